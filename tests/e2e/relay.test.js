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

// Sends `count` messages from `u` to `group` one after another (each answered before the next).
async function sendMany(u, group, count, tag) {
  const sent = [];
  for (let i = 0; i < count; i++) {
    const message = `${tag}:${i}`;
    const r = await chat(u, 'send_message', { group_id: group, message });
    assert.equal(r.success, true, JSON.stringify(r));
    sent.push(message);
  }
  return sent;
}

// The messages `ch` got from `sender` in `group`, in arrival order.
const from = (ch, group, sender) => relays(ch, group).filter((p) => p.result.from_user_id === sender).map((p) => p.result.message);

test('relay: many members over two gateways get every message exactly once, in per-sender order; pending ones none', async () => {
  const stack = await startStack({ workers: [], gatewayArgs: GW_ARGS });
  try {
    const gwB = await stack.startGateway();
    const urls = [stack.url, gwB.url];
    const admin = await user(stack, stack.url, 'admin');
    await chat(admin, 'create_group', { group_id: 'room', group_type: 'strict_private' });
    // 12 members alternating between the gateways, joined through chat:room; the admin accepts
    // 8 of them and mutes 2 of those; 4 stay pending.
    const members = [];
    for (let i = 0; i < 12; i++) {
      const u = await user(stack, urls[i % 2], `m${i}`);
      const { channel, reply } = await join(u.socket, 'chat:room');
      assert.equal(reply.state, 'pending');
      u.chat = channel;
      members.push(u);
    }
    for (let i = 0; i < 8; i++) {
      const r = await chat(admin, 'accept_member', { group_id: 'room', user_id: `m${i}` });
      assert.equal(r.result.state, 'active');
    }
    for (const i of [2, 3]) {
      assert.equal((await chat(admin, 'mute_member', { group_id: 'room', user_id: `m${i}` })).result.state, 'muted');
    }
    // Senders on both gateways at once: the admin (A), m0 (A), m1 (B).
    const senders = [admin, members[0], members[1]];
    const N = 40;
    const sent = await Promise.all(senders.map((s) => sendMany(s, 'room', N, s.name)));
    const receivers = members.slice(0, 8);
    for (const u of receivers) {
      await waitForPushes(u.chat, (ps) => relays({ pushes: ps }, 'room').length >= N * senders.length, 15000);
      for (let s = 0; s < senders.length; s++) {
        assert.deepEqual(from(u.chat, 'room', senders[s].name), sent[s], `${u.name} from ${senders[s].name}`);
      }
    }
    // The admin (a member through api:lobby) got them too.
    await waitForPushes(admin.lobby, (ps) => relays({ pushes: ps }, 'room').length >= N * senders.length, 15000);
    // Nothing beyond, no gap notices; pending members got nothing at all.
    await new Promise((r) => setTimeout(r, 300));
    for (const u of receivers) {
      assert.equal(relays(u.chat, 'room').length, N * senders.length, u.name);
      assert.equal(u.chat.pushes.filter((p) => p.kind === 'gap').length, 0);
    }
    for (const u of members.slice(8)) {
      assert.equal(u.chat.pushes.filter((p) => p.kind === 'relay' || p.kind === 'gap').length, 0, u.name);
    }
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    await stack.stop();
  }
});

test('relay: a gateway killed while messages flow: its members leave the groups, the others lose nothing', async () => {
  const stack = await startStack({ workers: [], gatewayArgs: GW_ARGS });
  try {
    const gwB = await stack.startGateway();
    const admin = await user(stack, stack.url, 'admin');
    await chat(admin, 'create_group', { group_id: 'live', group_type: 'public' });
    const onA = [];
    const onB = [];
    for (let i = 0; i < 4; i++) {
      for (const [list, url, tag] of [[onA, stack.url, 'a'], [onB, gwB.url, 'b']]) {
        const u = await user(stack, url, `${tag}${i}`);
        u.chat = (await join(u.socket, 'chat:live')).channel;
        list.push(u);
      }
    }
    let info = await chat(admin, 'group_info', { group_id: 'live' });
    assert.equal(info.result.members.length, 9);
    // The admin keeps sending while gateway B dies (SIGKILL: no goodbye, only silence).
    const N = 150;
    const sending = sendMany(admin, 'live', N, 'msg');
    await waitForPushes(onA[0].chat, (ps) => relays({ pushes: ps }, 'live').length >= 20, 10000);
    gwB.kill('SIGKILL');
    for (const u of onB) u.socket.disconnect();
    const sent = await sending;
    for (const u of onA) {
      await waitForPushes(u.chat, (ps) => relays({ pushes: ps }, 'live').length >= N, 15000);
      assert.deepEqual(from(u.chat, 'live', 'admin'), sent, u.name);
      assert.equal(u.chat.pushes.filter((p) => p.kind === 'gap').length, 0);
    }
    // Once the broker declares B dead (3 silent heartbeats), its members are gone.
    await eventually(async () => {
      info = await chat(admin, 'group_info', { group_id: 'live' });
      return info.result.members.length === 5;
    }, 10000);
    assert.deepEqual(info.result.members.map((m) => m.user_id).sort(), ['a0', 'a1', 'a2', 'a3', 'admin']);
    const r = await chat(admin, 'send_message', { group_id: 'live', message: 'after' });
    assert.deepEqual(r.result, { status: 'relayed', recipients_count: 5 });
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    await stack.stop();
  }
});

test('relay: a member that does not read is cut off and leaves the group; the others are not slowed', async () => {
  const WebSocket = require('ws');
  // Gateway B keeps at most 64 frames per connection.
  const stack = await startStack({ workers: [], gatewayArgs: GW_ARGS });
  try {
    const gwB = await stack.startGateway([...GW_ARGS, '--set', 'max_outbox=400']);
    const admin = await user(stack, stack.url, 'admin');
    await chat(admin, 'create_group', { group_id: 'big', group_type: 'public' });
    const fast = await user(stack, gwB.url, 'fast');
    fast.chat = (await join(fast.socket, 'chat:big')).channel;
    // The slow member: a raw WebSocket that joins, then stops reading.
    const ws = new WebSocket(`${gwB.url}/websocket?vsn=2.0.0&token=${encodeURIComponent(token('slow'))}`);
    await new Promise((resolve, reject) => { ws.on('open', resolve); ws.on('error', reject); });
    const closed = new Promise((resolve) => ws.on('close', (code) => resolve(code)));
    const joined = new Promise((resolve) => ws.once('message', (d) => resolve(JSON.parse(d.toString()))));
    ws.send(JSON.stringify(['1', '1', 'chat:big', 'phx_join', {}]));
    const reply = await joined;
    assert.equal(reply[4].status, 'ok', JSON.stringify(reply));
    ws._socket.pause();
    let info = await chat(admin, 'group_info', { group_id: 'big' });
    assert.deepEqual(info.result.members.map((m) => m.user_id), ['admin', 'fast', 'slow']);
    // Enough large messages to fill the socket buffers and then the outbox (in batches).
    const N = 3000;
    const text = 'y'.repeat(1900);
    const sent = [];
    for (let i = 0; i < N; i += 100) {
      const batch = [];
      for (let j = i; j < i + 100; j++) {
        sent.push(`${j}:${text}`);
        batch.push(chat(admin, 'send_message', { group_id: 'big', message: `${j}:${text}` }));
      }
      for (const r of await Promise.all(batch)) assert.equal(r.success, true, JSON.stringify(r));
    }
    // The fast member on the same gateway got everything, once, in order.
    await eventually(() => relays(fast.chat, 'big').length >= N, 90000).catch(() => {
      const kinds = {};
      for (const p of fast.chat.pushes) kinds[p.kind] = (kinds[p.kind] || 0) + 1;
      assert.fail(`fast member got ${JSON.stringify(kinds)} of ${N}`);
    });
    assert.deepEqual(from(fast.chat, 'big', 'admin'), sent);
    // The slow one was cut off: out of the group at once, and closed (1008) once it reads.
    await eventually(async () => {
      info = await chat(admin, 'group_info', { group_id: 'big' });
      return info.result.members.length === 2;
    }, 10000);
    ws._socket.resume();
    assert.equal(await closed, 1008);
    const r = await chat(admin, 'send_message', { group_id: 'big', message: 'after' });
    assert.deepEqual(r.result, { status: 'relayed', recipients_count: 2 });
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    await stack.stop();
  }
});

test('relay: max_groups and max_group_members bound the registry, with the reason', async () => {
  const stack = await startStack({ workers: [], gatewayArgs: GW_ARGS, brokerArgs: ['--set', 'max_groups=1', '--set', 'max_group_members=2'] });
  try {
    const a = await user(stack, stack.url, 'a');
    const b = await user(stack, stack.url, 'b');
    const c = await user(stack, stack.url, 'c');
    assert.equal((await chat(a, 'create_group', { group_id: 'one' })).success, true);
    assert.equal((await chat(a, 'create_group', { group_id: 'two' })).error, 'too many groups (max_groups)');
    assert.equal((await chat(b, 'join_group', { group_id: 'one' })).result.state, 'active');
    await assert.rejects(join(c.socket, 'chat:one'), (e) => e.reply.reason === 'too many members in the group (max_group_members)');
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    await stack.stop();
  }
});

test('relay: operators list, inspect and delete groups with genapi-ctl (admin actions)', async () => {
  const path = require('node:path');
  const { execFile } = require('node:child_process');
  const { BIN } = require('../support/stack');
  const ctl = (broker, args) => new Promise((resolve) => execFile(path.join(BIN, 'genapi-ctl'),
    [...args, '--broker', broker.endpoints.gateways], { timeout: 15000 },
    (err, stdout, stderr) => {
      let json = null;
      try { json = JSON.parse(stdout); } catch (e) { /* not JSON */ }
      resolve({ code: err ? err.code : 0, json, stderr });
    }));
  const stack = await startStack({ workers: [], gatewayArgs: GW_ARGS, brokerArgs: ['--set', 'admin_actions=status,groups,group_info,group_delete'] });
  try {
    const gwB = await stack.startGateway();
    const a = await user(stack, stack.url, 'a');
    const b = await user(stack, gwB.url, 'b');
    await chat(a, 'create_group', { group_id: 'ops', group_type: 'private' });
    const bChat = (await join(b.socket, 'chat:ops')).channel;
    await chat(a, 'send_message', { group_id: 'ops', message: 'one' });
    let r = await ctl(stack.broker, ['groups']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.json.groups, [{ group_id: 'ops', group_type: 'private', admin: 'a', members: 2, messages: 1 }]);
    r = await ctl(stack.broker, ['group-info', 'ops']);
    assert.deepEqual(r.json.group.members, [
      { user_id: 'a', state: 'active', admin: true },
      { user_id: 'b', state: 'pending', admin: false },
    ]);
    r = await ctl(stack.broker, ['group-info', 'nope']);
    assert.notEqual(r.code, 0);
    assert.equal(r.json.error, 'group not found');
    r = await ctl(stack.broker, ['group-delete', 'ops']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.json.removed_members, 2);
    r = await chat(a, 'send_message', { group_id: 'ops', message: 'two' });
    assert.equal(r.error, 'group not found');
    assert.equal((await ctl(stack.broker, ['groups'])).json.groups.length, 0);
    assert.equal(bChat.pushes.filter((p) => p.kind === 'relay').length, 0); // pending all along
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    await stack.stop();
  }
});

test('relay: with relay_state_file, groups and members survive a broker restart', async () => {
  const fs = require('node:fs');
  const os = require('node:os');
  const path = require('node:path');
  const { startBroker } = require('../support/stack');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'genapi-relay-'));
  const file = path.join(dir, 'relay.json');
  const brokerArgs = ['--set', `relay_state_file=${file}`];
  const stack = await startStack({ workers: [], gatewayArgs: GW_ARGS, brokerArgs });
  try {
    const gwB = await stack.startGateway();
    const alice = await user(stack, stack.url, 'alice');
    const bob = await user(stack, gwB.url, 'bob');
    const carol = await user(stack, gwB.url, 'carol');
    await chat(alice, 'create_group', { group_id: 'keep', group_type: 'strict_private' });
    const bobChat = (await join(bob.socket, 'chat:keep')).channel;
    const carolChat = (await join(carol.socket, 'chat:keep')).channel;
    await chat(alice, 'accept_member', { group_id: 'keep', user_id: 'bob' });
    await chat(alice, 'send_message', { group_id: 'keep', message: 'before' });
    await waitForPushes(bobChat, (ps) => relays({ pushes: ps }, 'keep').length === 1);

    const endpoints = stack.broker.endpoints;
    await stack.broker.stop(); // written at stop
    stack.procs.splice(stack.procs.indexOf(stack.broker), 1);
    const saved = JSON.parse(fs.readFileSync(file, 'utf8'));
    assert.equal(saved.genapi_relay, 1);
    assert.deepEqual(saved.groups.map((g) => g.group_id), ['keep']);
    const broker2 = await startBroker({ endpoints, args: brokerArgs });
    stack.procs.unshift(broker2);

    // The gateways name their members again: the same states, the same channels.
    const r = await eventually(async () => {
      const x = await chat(alice, 'send_message', { group_id: 'keep', message: 'after' });
      return x.success && x;
    }, 15000);
    assert.deepEqual(r.result, { status: 'relayed', recipients_count: 2 });
    await waitForPushes(bobChat, (ps) => relays({ pushes: ps }, 'keep').length === 2, 10000);
    assert.deepEqual(from(bobChat, 'keep', 'alice'), ['before', 'after']);
    assert.equal(bobChat.pushes.filter((p) => p.kind === 'gap').length, 0);
    // Gateway B may not have heard from the new broker yet (after 'broker stopping' it calls
    // the broker unreachable until then): its calls get Service unavailable meanwhile.
    const info = await eventually(async () => {
      const x = await chat(bob, 'group_info', { group_id: 'keep' });
      return x.success && x;
    }, 15000);
    assert.deepEqual(info.result.members, [
      { user_id: 'alice', state: 'active', admin: true },
      { user_id: 'bob', state: 'active', admin: false },
      { user_id: 'carol', state: 'pending', admin: false },
    ]);
    assert.equal(carolChat.pushes.filter((p) => p.kind === 'relay').length, 0);
    // A member that leaves after the restart is gone for good.
    carolChat.leave();
    await eventually(async () => (await chat(alice, 'group_info', { group_id: 'keep' })).result.members.length === 2, 10000);
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    await stack.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('relay: a gateway taken for dead and back names its members again', async () => {
  const stack = await startStack({ workers: [], gatewayArgs: GW_ARGS });
  try {
    const gwB = await stack.startGateway();
    const alice = await user(stack, stack.url, 'alice');
    const bob = await user(stack, gwB.url, 'bob');
    await chat(alice, 'create_group', { group_id: 'p', group_type: 'strict_private' });
    const bobChat = (await join(bob.socket, 'chat:p')).channel;
    await chat(alice, 'accept_member', { group_id: 'p', user_id: 'bob' });
    await chat(alice, 'mute_member', { group_id: 'p', user_id: 'bob' });
    // Gateway B stops answering (SIGSTOP) long enough for the broker to drop its members.
    gwB.child.kill('SIGSTOP');
    try {
      await eventually(async () => (await chat(alice, 'group_info', { group_id: 'p' })).result.members.length === 1, 10000);
    } finally {
      gwB.child.kill('SIGCONT');
    }
    // Back: B names bob again, muted as he was; he receives again.
    const info = await eventually(async () => {
      const x = await chat(alice, 'group_info', { group_id: 'p' });
      return x.result.members.length === 2 && x;
    }, 10000);
    assert.deepEqual(info.result.members[1], { user_id: 'bob', state: 'muted', admin: false });
    await chat(alice, 'send_message', { group_id: 'p', message: 'welcome back' });
    await waitForPushes(bobChat, (ps) => relays({ pushes: ps }, 'p').length === 1, 10000);
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    await stack.stop();
  }
});

test('relay: a corrupt or unreadable relay_state_file stops the broker at start with a reason', async () => {
  const fs = require('node:fs');
  const os = require('node:os');
  const path = require('node:path');
  const { Proc } = require('../support/stack');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'genapi-relay-bad-'));
  try {
    const cases = {
      'notjson.json': 'not json',
      'wrongkind.json': '{"genapi_sticky":1,"entries":[]}',
      'badgroup.json': '{"genapi_relay":1,"groups":[{"group_id":"g","group_type":"odd","admin":"a","seq":0,"members":[]}]}',
      'badmember.json': '{"genapi_relay":1,"groups":[{"group_id":"g","group_type":"public","admin":"a","seq":0,"members":[{"user_id":"u","state":"asleep"}]}]}',
    };
    const files = Object.entries(cases).map(([name, text]) => {
      const f = path.join(dir, name);
      fs.writeFileSync(f, text);
      return f;
    });
    for (const file of [...files, dir]) {
      const p = new Proc('genapi-broker', [
        '--set', 'worker_endpoint=tcp://127.0.0.1:*', '--set', 'gateway_endpoint=tcp://127.0.0.1:*',
        '--set', 'stream_in_endpoint=tcp://127.0.0.1:*', '--set', 'stream_out_endpoint=tcp://127.0.0.1:*',
        '--set', `relay_state_file=${file}`,
      ]);
      const exit = await p.exitPromise;
      assert.notEqual(exit.code, 0, file);
      assert.ok(!p.lines.some((l) => l.startsWith('READY')), 'the broker must not start');
      assert.match(p.stderr, /relay_state_file: /, file);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// One gateway encodes a push once and sends the same frame to the next member when its
// channel (topic and join_ref) is the same: members on other channels of that gateway, in any
// order, still get it on their own channel, each exactly once.
test('relay: members of one gateway on different channels each get the push on their own', async () => {
  const stack = await startStack({ workers: [], gatewayArgs: GW_ARGS });
  try {
    const alice = await user(stack, stack.url, 'alice');
    const bob = await user(stack, stack.url, 'bob');
    const carol = await user(stack, stack.url, 'carol');
    const dave = await user(stack, stack.url, 'dave');
    let r = await chat(alice, 'create_group', { group_id: 'mix' }); // alice: api:lobby
    assert.equal(r.success, true, JSON.stringify(r));
    const { channel: bobChat } = await join(bob.socket, 'chat:mix'); // bob: chat:mix
    r = await chat(carol, 'join_group', { group_id: 'mix' }); // carol: api:lobby
    assert.equal(r.result.state, 'active');
    // dave: chat:mix, left and joined again (so under another join_ref than bob's)
    const { channel: first } = await join(dave.socket, 'chat:mix');
    await new Promise((resolve) => first.leave().receive('ok', resolve));
    const { channel: daveChat } = await join(dave.socket, 'chat:mix');
    assert.notEqual(daveChat.joinRef(), bobChat.joinRef());
    for (let i = 1; i <= 3; i++) {
      r = await chat(bob, 'send_message', { group_id: 'mix', message: `m${i}` }, bobChat);
      assert.deepEqual(r.result, { status: 'relayed', recipients_count: 4 });
    }
    for (const ch of [alice.lobby, bobChat, carol.lobby, daveChat]) {
      await waitForPushes(ch, (ps) => relays({ pushes: ps }, 'mix').length === 3);
      assert.deepEqual(relays(ch, 'mix').map((p) => p.result.message), ['m1', 'm2', 'm3']);
    }
    for (const ch of [bob.lobby, dave.lobby]) assert.equal(relays(ch, 'mix').length, 0);
  } finally {
    await stack.stop();
  }
});
