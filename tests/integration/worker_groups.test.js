// SPDX-License-Identifier: MIT
// Relay groups from a worker (docs/protocol.md, "Relay groups from workers"): a worker function
// (genapi-test-worker's group_op, through genapi/groups.h) creates a group for a user, adds
// users, accepts them and sends a message that phoenix clients on two gateways receive; the
// users' own joins attach the memberships the worker made; refused operations come back with
// the matrix's precise errors.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { BIN, HEARTBEAT_MS, startStack, startBroker, startWorker, startGateway, connect, join, call, waitForPushes, eventually } = require('../support/stack');
const { sign, now } = require('../support/jwt');

const SECRET = 'test-secret-for-the-worker-group-tests';
const GW_ARGS = ['--set', 'auth=jwt', '--set', `jwt_secret=${SECRET}`];

async function user(stack, url, name) {
  const socket = connect(url, { token: sign({ sub: name, exp: now() + 600 }, SECRET) }, stack);
  const { channel } = await join(socket, 'api:lobby');
  return { name, socket, lobby: channel };
}

let seq = 0;
// One group operation run by the worker (test_service.group_op): its outcome, as the library
// gave it to the handler.
async function workerOp(u, args, requestType = 'group_op') {
  const r = await call(u.lobby, { request_id: `wg-${++seq}`, service: 'test_service', request_type: requestType, args });
  assert.equal(r.success, true, JSON.stringify(r));
  return r.result;
}

const relays = (ch, group) => ch.pushes.filter((p) => p.kind === 'relay' && p.result.group_id === group);

test('worker groups: a worker creates, adds, accepts and sends; clients on two gateways receive', async () => {
  const stack = await startStack({ workers: ['genapi-test-worker'], gatewayArgs: GW_ARGS });
  try {
    const gwB = await stack.startGateway();
    const alice = await user(stack, stack.url, 'alice');
    const bob = await user(stack, gwB.url, 'bob');
    const carol = await user(stack, gwB.url, 'carol');

    // The worker acts for "bot", a user with no connection: bot creates a private group and is
    // its admin.
    let r = await workerOp(alice, { op: 'create', user_id: 'bot', group_id: 'team', group_type: 'private' });
    assert.deepEqual(r, { ok: true, result: { group_id: 'team', group_type: 'private', state: 'active' } });
    r = await workerOp(alice, { op: 'create', user_id: 'bot', group_id: 'team' });
    assert.deepEqual(r, { ok: false, error: 'group already exists', code: 1, can_retry: false });

    // It adds alice and bob (pending in a private group) and accepts them as bot.
    for (const name of ['alice', 'bob']) {
      r = await workerOp(alice, { op: 'join', user_id: name, group_id: 'team' });
      assert.deepEqual(r.result, { group_id: 'team', state: 'pending' });
      r = await workerOp(alice, { op: 'accept', user_id: 'bot', group_id: 'team', target: name });
      assert.deepEqual(r.result, { group_id: 'team', user_id: name, state: 'active' });
    }

    // Refusals carry the same precise errors a client gets.
    const refused = [
      [{ op: 'join', user_id: 'alice', group_id: 'team' }, 'already a member'],
      [{ op: 'send', user_id: 'carol', group_id: 'team', message: 'hi' }, 'not a member'],
      [{ op: 'send', user_id: 'bot', group_id: 'nope', message: 'hi' }, 'group not found'],
      [{ op: 'mute', user_id: 'bot', group_id: 'team', target: 'bob' }, 'wrong group type'],
      [{ op: 'delete', user_id: 'alice', group_id: 'team' }, 'not admin'],
      [{ op: 'accept', user_id: 'alice', group_id: 'team', target: 'carol' }, 'target is not a member'],
      [{ op: 'create', user_id: 'bot', group_id: 'x', group_type: 'secret' }, 'invalid group_type: expected public, private or strict_private'],
    ];
    for (const [args, error] of refused) {
      r = await workerOp(alice, args);
      assert.deepEqual(r, { ok: false, error, code: 1, can_retry: false }, JSON.stringify(args));
    }
    // A bad op never reaches the broker; nor does a call from a non_blocking handler, which
    // runs on the I/O thread that carries the answers.
    r = await workerOp(alice, { op: 'explode', user_id: 'bot', group_id: 'team' });
    assert.equal(r.ok, false);
    assert.match(r.error, /^invalid group operation/);
    r = await workerOp(alice, { op: 'info', user_id: 'bot', group_id: 'team' }, 'group_op_nb');
    assert.deepEqual(r, { ok: false, error: 'group operations wait for the broker: not from a non_blocking handler', code: 1, can_retry: false });

    // The users join through their connections (two gateways): the worker's memberships move
    // there and keep their state; carol, a newcomer, is pending.
    const { channel: aliceChat, reply: aliceJoin } = await join(alice.socket, 'chat:team');
    assert.deepEqual(aliceJoin, { group_id: 'team', state: 'active' });
    const { channel: bobChat, reply: bobJoin } = await join(bob.socket, 'chat:team');
    assert.deepEqual(bobJoin, { group_id: 'team', state: 'active' });
    const { channel: carolChat, reply: carolJoin } = await join(carol.socket, 'chat:team');
    assert.deepEqual(carolJoin, { group_id: 'team', state: 'pending' });

    r = await workerOp(alice, { op: 'info', user_id: 'bot', group_id: 'team' });
    assert.deepEqual(r.result, {
      group_id: 'team',
      group_type: 'private',
      members: [
        { user_id: 'bot', state: 'active', admin: true },
        { user_id: 'alice', state: 'active', admin: false },
        { user_id: 'bob', state: 'active', admin: false },
        { user_id: 'carol', state: 'pending', admin: false },
      ],
    });

    // The worker sends as bot: alice (gateway A) and bob (gateway B) receive it, carol does not.
    r = await workerOp(alice, { op: 'send', user_id: 'bot', group_id: 'team', message: 'hello from the worker' });
    assert.deepEqual(r.result, { status: 'relayed', recipients_count: 3 });
    for (const ch of [aliceChat, bobChat]) {
      await waitForPushes(ch, (ps) => relays({ pushes: ps }, 'team').length === 1);
      const got = relays(ch, 'team')[0];
      assert.equal(got.success, true);
      assert.equal(got.result.from_user_id, 'bot');
      assert.equal(got.result.message, 'hello from the worker');
      assert.match(got.request_id, /^wg-\d+$/); // the handler's request id
    }

    // The worker takes bob out: his gateway is told, and he gets nothing more.
    r = await workerOp(alice, { op: 'leave', user_id: 'bob', group_id: 'team' });
    assert.deepEqual(r.result, { group_id: 'team', status: 'left' });
    r = await workerOp(alice, { op: 'send', user_id: 'bot', group_id: 'team', message: 'second' });
    assert.deepEqual(r.result, { status: 'relayed', recipients_count: 2 });
    await waitForPushes(aliceChat, (ps) => relays({ pushes: ps }, 'team').length === 2);
    // A client message after it, to bob's other group, shows his gateway has passed 'second'.
    await call(alice.lobby, { request_id: 'c-1', service: 'chat_service', request_type: 'create_group', args: { group_id: 'after' } });
    const { channel: bobAfter } = await join(bob.socket, 'chat:after');
    r = await call(alice.lobby, { request_id: 'c-2', service: 'chat_service', request_type: 'send_message', args: { group_id: 'after', message: 'marker' } });
    assert.deepEqual(r.result, { status: 'relayed', recipients_count: 2 });
    await waitForPushes(bobAfter, (ps) => relays({ pushes: ps }, 'after').length === 1);
    assert.equal(relays(bobChat, 'team').length, 1);
    assert.equal(relays(carolChat, 'team').length, 0);

    // Any thread of the service may act, with its own context (wk_context_new): the push
    // carries the request id it gave.
    r = await workerOp(alice, { op: 'send', user_id: 'bot', group_id: 'team', message: 'from a thread' }, 'group_op_thread');
    assert.deepEqual(r, { ok: true, result: { status: 'relayed', recipients_count: 2 } });
    await waitForPushes(aliceChat, (ps) => relays({ pushes: ps }, 'team').length === 3);
    assert.equal(relays(aliceChat, 'team')[2].request_id, 'from-a-thread');
    r = await workerOp(alice, { op: 'send', user_id: 'bob', group_id: 'team', message: 'x' }, 'group_op_thread');
    assert.deepEqual(r, { ok: false, error: 'not a member', code: 1 });

    // The admin (through the worker) deletes the group; the members' gateways forget it.
    r = await workerOp(alice, { op: 'delete', user_id: 'bot', group_id: 'team' });
    assert.deepEqual(r.result, { group_id: 'team', status: 'deleted' });
    r = await workerOp(alice, { op: 'info', user_id: 'bot', group_id: 'team' });
    assert.deepEqual(r, { ok: false, error: 'group not found', code: 1, can_retry: false });
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    await stack.stop();
  }
});

// With CURVE on, only a worker key whose certificate's services name genapi.relay may act for
// users (docs/security.md): a key for its own service alone, or with `*`, is refused.
test('worker groups: with CURVE, only a worker key naming genapi.relay acts for users', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'genapi-curve-groups-'));
  const peers = path.join(dir, 'peers');
  fs.mkdirSync(peers);
  const gen = (out, role, extra = []) => new Promise((resolve, reject) => execFile(path.join(BIN, 'genapi-ctl'),
    ['keygen', '--role', role, '--out', out, ...extra], (err, so, se) => (err ? reject(new Error(se)) : resolve(out))));
  const broker = path.join(dir, 'broker');
  await gen(broker, 'broker');
  const gatewayKey = await gen(path.join(peers, 'gateway'), 'gateway', ['--name', 'gw1']);
  const plain = await gen(path.join(peers, 'plain'), 'worker', ['--name', 'plain', '--services', 'test_service']);
  const wildcard = await gen(path.join(peers, 'wildcard'), 'worker', ['--name', 'wildcard', '--services', '*']);
  const relay = await gen(path.join(peers, 'relay'), 'worker', ['--name', 'relay', '--services', 'test_service,genapi.relay']);
  const client = (key) => ['--set', `curve_secret_file=${key}`, '--set', `curve_broker_file=${broker}`];
  const b = await startBroker({ args: ['--set', `curve_secret_file=${broker}`, '--set', `curve_peers_dir=${peers}`] });
  const procs = [b];
  try {
    const gw = await startGateway(b, { args: client(gatewayKey) });
    procs.push(gw);
    const socket = connect(`${gw.url}`, {});
    const { channel: lobby } = await join(socket, 'api:lobby');
    const u = { lobby };
    const create = { op: 'create', user_id: 'bot', group_id: 'g1' };
    for (const [key, name] of [[plain, 'plain'], [wildcard, 'wildcard']]) {
      const w = await startWorker('genapi-test-worker', b, { args: client(key) });
      const r = await eventually(async () => {
        const reply = await call(u.lobby, { request_id: `k-${++seq}`, service: 'test_service', request_type: 'group_op', args: create });
        return reply.success ? reply.result : null; // until the gateway knows the function
      });
      assert.deepEqual(r, { ok: false, code: 1, can_retry: false,
        error: `Permission denied: worker key ${name} may not act for users in relay groups (its certificate's services must name genapi.relay)` });
      await w.stop();
    }
    const w = await startWorker('genapi-test-worker', b, { args: client(relay) });
    procs.push(w);
    const r = await eventually(async () => {
      const reply = await call(u.lobby, { request_id: `k-${++seq}`, service: 'test_service', request_type: 'group_op', args: create });
      return reply.success ? reply.result : null;
    });
    assert.deepEqual(r, { ok: true, result: { group_id: 'g1', group_type: 'public', state: 'active' } });
    socket.disconnect();
  } finally {
    for (const p of procs.reverse()) await p.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// Offline members (added by a worker, never joined through a connection) are kept in the
// relay_state_file and stay after a broker restart, where members no gateway claims go.
test('worker groups: offline members survive a broker restart with relay_state_file', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'genapi-worker-groups-'));
  const file = path.join(dir, 'relay.json');
  const brokerArgs = ['--set', `relay_state_file=${file}`];
  const stack = await startStack({ workers: ['genapi-test-worker'], gatewayArgs: GW_ARGS, brokerArgs });
  try {
    const alice = await user(stack, stack.url, 'alice');
    let r = await workerOp(alice, { op: 'create', user_id: 'bot', group_id: 'kept', group_type: 'private' });
    assert.equal(r.ok, true, JSON.stringify(r));
    r = await workerOp(alice, { op: 'join', user_id: 'dora', group_id: 'kept' });
    assert.deepEqual(r.result, { group_id: 'kept', state: 'pending' });
    // alice is a member through her connection: not offline.
    r = await workerOp(alice, { op: 'join', user_id: 'alice', group_id: 'kept' });
    await join(alice.socket, 'chat:kept');

    const endpoints = stack.broker.endpoints;
    await stack.broker.stop(); // written at stop
    stack.procs.splice(stack.procs.indexOf(stack.broker), 1);
    const saved = JSON.parse(fs.readFileSync(file, 'utf8'));
    assert.deepEqual(saved.groups[0].members, [
      { user_id: 'bot', state: 'active', offline: true },
      { user_id: 'dora', state: 'pending', offline: true },
      { user_id: 'alice', state: 'pending' },
    ]);
    const broker2 = await startBroker({ endpoints, args: brokerArgs });
    stack.procs.unshift(broker2);
    // After the first liveness period (unclaimed members go) the offline ones are still there.
    await new Promise((resolve) => setTimeout(resolve, 4 * HEARTBEAT_MS));
    r = await eventually(async () => {
      const x = await workerOp(alice, { op: 'info', user_id: 'bot', group_id: 'kept' });
      return x.ok && x;
    }, 15000);
    assert.deepEqual(r.result.members, [
      { user_id: 'bot', state: 'active', admin: true },
      { user_id: 'dora', state: 'pending', admin: false },
      { user_id: 'alice', state: 'pending', admin: false },
    ]);
    r = await workerOp(alice, { op: 'accept', user_id: 'bot', group_id: 'kept', target: 'dora' });
    assert.deepEqual(r.result, { group_id: 'kept', user_id: 'dora', state: 'active' });
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    await stack.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
