// SPDX-License-Identifier: MIT
// Relay groups across two gateway processes (docs/protocol.md, "Relay groups"): the built-in
// chat_service functions and the chat:GROUP channel, checked against each connection's own
// identity; delivery to active and muted members on both gateways exactly once and in
// per-sender order, never to pending ones; a killed gateway's members leave their groups while
// the other gateway's members lose nothing.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { startStack, connect, join, call, waitForPushes, eventually, assertResponseShape } = require('../support/stack');
const { sign, now } = require('../support/jwt');

const SECRET = 'test-secret-for-the-relay-tests';
const GW_ARGS = ['--set', 'auth=jwt', '--set', `jwt_secret=${SECRET}`];

function token(user) {
  return sign({ sub: user, exp: now() + 600 }, SECRET);
}

// A user connected to `url`, joined to api:lobby: {user, socket, lobby}.
async function user(stack, url, name) {
  const socket = connect(url, { token: token(name) }, stack);
  const { channel } = await join(socket, 'api:lobby');
  return { name, socket, lobby: channel };
}

let seq = 0;
function chat(u, requestType, args, channel = u.lobby) {
  return call(channel, { request_id: `${u.name}-${++seq}`, service: 'chat_service', request_type: requestType, args });
}

const relays = (ch, group) => ch.pushes.filter((p) => p.kind === 'relay' && p.result.group_id === group);

test('relay: built-ins, chat channel joins and the permission matrix over two gateways', async () => {
  const stack = await startStack({ workers: [], gatewayArgs: GW_ARGS });
  try {
    const gwB = await stack.startGateway();
    const alice = await user(stack, stack.url, 'alice');
    const bob = await user(stack, gwB.url, 'bob');
    const carol = await user(stack, gwB.url, 'carol');

    let r = await chat(alice, 'create_group', { group_id: 'pub', group_type: 'public' });
    assertResponseShape(r);
    assert.equal(r.success, true, JSON.stringify(r));
    assert.deepEqual(r.result, { group_id: 'pub', group_type: 'public', state: 'active' });
    r = await chat(alice, 'create_group', { group_id: 'pub' });
    assert.equal(r.error, 'group already exists');
    r = await chat(alice, 'create_group', { group_id: 'x', group_type: 'secret' });
    assert.match(r.error, /invalid group_type/);

    // Joining chat:pub joins the group (on the other gateway); a missing group is refused
    // with the precise reason.
    const { channel: bobChat, reply } = await join(bob.socket, 'chat:pub');
    assert.deepEqual(reply, { group_id: 'pub', state: 'active' });
    await assert.rejects(join(bob.socket, 'chat:nope'), (e) => e.reply.reason === 'group not found');

    r = await chat(alice, 'send_message', { group_id: 'pub', message: 'hello' });
    assert.deepEqual(r.result, { status: 'relayed', recipients_count: 2 });
    await waitForPushes(bobChat, (ps) => relays({ pushes: ps }, 'pub').length === 1);
    const got = relays(bobChat, 'pub')[0];
    assertResponseShape(got);
    assert.equal(got.request_id, r.request_id);
    assert.equal(got.success, true);
    assert.equal(got.result.from_user_id, 'alice');
    assert.equal(got.result.message, 'hello');
    assert.match(got.result.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.deepEqual(Object.keys(got.result).sort(), ['from_user_id', 'group_id', 'message', 'timestamp']);
    // The sender, a member through api:lobby, gets it there too.
    await waitForPushes(alice.lobby, (ps) => relays({ pushes: ps }, 'pub').length === 1);

    // Arguments are checked like any function's: message at most 2000 bytes.
    r = await chat(alice, 'send_message', { group_id: 'pub', message: 'x'.repeat(2001) });
    assert.equal(r.success, false);
    assert.match(r.error, /message/);
    r = await chat(carol, 'send_message', { group_id: 'pub', message: 'hi' });
    assert.equal(r.error, 'not a member');
    r = await chat(carol, 'send_message', { group_id: 'nope', message: 'hi' });
    assert.equal(r.error, 'group not found');

    // Private: join -> pending (neither sends nor receives); any active member accepts.
    await chat(alice, 'create_group', { group_id: 'priv', group_type: 'private' });
    r = await chat(bob, 'join_group', { group_id: 'priv' });
    assert.deepEqual(r.result, { group_id: 'priv', state: 'pending' });
    r = await chat(carol, 'join_group', { group_id: 'priv' });
    assert.equal(r.result.state, 'pending');
    r = await chat(bob, 'join_group', { group_id: 'priv' });
    assert.equal(r.error, 'already a member');
    r = await chat(bob, 'send_message', { group_id: 'priv', message: 'early' });
    assert.equal(r.error, 'membership pending');
    r = await chat(carol, 'accept_member', { group_id: 'priv', user_id: 'bob' });
    assert.equal(r.error, 'membership pending');
    r = await chat(alice, 'accept_member', { group_id: 'priv', user_id: 'bob' });
    assert.deepEqual(r.result, { group_id: 'priv', user_id: 'bob', state: 'active' });
    r = await chat(bob, 'mute_member', { group_id: 'priv', user_id: 'alice' });
    assert.equal(r.error, 'wrong group type');
    r = await chat(bob, 'send_message', { group_id: 'priv', message: 'in private' });
    assert.deepEqual(r.result, { status: 'relayed', recipients_count: 2 });
    await waitForPushes(alice.lobby, (ps) => relays({ pushes: ps }, 'priv').length === 1);
    await waitForPushes(bob.lobby, (ps) => relays({ pushes: ps }, 'priv').length === 1);

    // Strict private: only the admin accepts, mutes, unmutes; muted members receive, not send.
    await chat(alice, 'create_group', { group_id: 'strict', group_type: 'strict_private' });
    await chat(bob, 'join_group', { group_id: 'strict' });
    await chat(carol, 'join_group', { group_id: 'strict' });
    r = await chat(alice, 'accept_member', { group_id: 'strict', user_id: 'bob' });
    assert.equal(r.success, true);
    r = await chat(bob, 'accept_member', { group_id: 'strict', user_id: 'carol' });
    assert.equal(r.error, 'not admin');
    r = await chat(bob, 'mute_member', { group_id: 'strict', user_id: 'alice' });
    assert.equal(r.error, 'not admin');
    r = await chat(alice, 'mute_member', { group_id: 'strict', user_id: 'bob' });
    assert.deepEqual(r.result, { group_id: 'strict', user_id: 'bob', state: 'muted' });
    r = await chat(bob, 'send_message', { group_id: 'strict', message: 'muted?' });
    assert.equal(r.error, 'member is muted');
    r = await chat(alice, 'send_message', { group_id: 'strict', message: 'to the muted' });
    assert.deepEqual(r.result, { status: 'relayed', recipients_count: 2 });
    await waitForPushes(bob.lobby, (ps) => relays({ pushes: ps }, 'strict').length === 1);

    r = await chat(carol, 'group_info', { group_id: 'strict' });
    assert.deepEqual(r.result, {
      group_id: 'strict',
      group_type: 'strict_private',
      members: [
        { user_id: 'alice', state: 'active', admin: true },
        { user_id: 'bob', state: 'muted', admin: false },
        { user_id: 'carol', state: 'pending', admin: false },
      ],
    });
    r = await chat(alice, 'unmute_member', { group_id: 'strict', user_id: 'bob' });
    assert.equal(r.result.state, 'active');
    // Carol stayed pending: she never received anything.
    assert.equal(carol.lobby.pushes.filter((p) => p.kind === 'relay').length, 0);

    // Leaving the chat channel leaves the group; delete: the admin only.
    bobChat.leave();
    await eventually(async () => {
      const info = await chat(alice, 'group_info', { group_id: 'pub' });
      return info.result.members.length === 1;
    });
    r = await chat(bob, 'delete_group', { group_id: 'priv' });
    assert.equal(r.error, 'not admin');
    r = await chat(alice, 'delete_group', { group_id: 'priv' });
    assert.deepEqual(r.result, { group_id: 'priv', status: 'deleted' });
    r = await chat(bob, 'group_info', { group_id: 'priv' });
    assert.equal(r.error, 'group not found');
    r = await chat(bob, 'leave_group', { group_id: 'strict' });
    assert.equal(r.success, true);
    r = await chat(bob, 'leave_group', { group_id: 'strict' });
    assert.equal(r.error, 'not a member');
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    await stack.stop();
  }
});
