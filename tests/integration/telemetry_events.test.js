// SPDX-License-Identifier: MIT
// The hook and relay events (docs/telemetry.md, "Events") seen through `genapi-ctl tail` on
// real processes: the gateway's genapi.hook.* around genapi-test-worker's worker-function hooks
// (answered, refused, timed out, failing); the broker's genapi.relay.join, .send and .leave and
// each gateway's genapi.relay.deliver (one per message and gateway, counting its members) for a
// group spread over two gateways; the connection events of a JWT gateway (connect, join,
// auth_failure, disconnect).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { BIN, startStack, connect, join, call, eventually, startTail } = require('../support/stack');
const { sign, now } = require('../support/jwt');

const SECRET = 'test-secret-for-the-telemetry-tests';
const GATEWAY = ['--set', 'auth=jwt', '--set', `jwt_secret=${SECRET}`, '--set', 'allow_anonymous=true'];

const tail = startTail;

const token = (sub) => sign({ sub, exp: now() + 600 }, SECRET);

test('hook events: start, stop and exception of before and after hooks, with their measurements', async () => {
  const stack = await startStack({ workers: ['genapi-test-worker'], gatewayArgs: GATEWAY });
  const tails = [];
  try {
    const t = tail(['genapi.hook', '--gateway-http', `127.0.0.1:${stack.gateway.metricsPort}`]);
    tails.push(t);
    await t.attached();
    const { channel } = await join(connect(stack.url, { token: token('user_7') }, stack));
    const ask = async (id, mode) => {
      const r = await call(channel, { request_id: id, service: 'test_service', request_type: 'hooked', args: { value: 1, mode } });
      return r;
    };
    const of = (id) => (l) => l.metadata.request_id === id;

    // Both hooks answer: before start/stop, after start/stop, each stop with its duration.
    assert.equal((await ask('h-pass', 'pass')).success, true);
    await eventually(() => t.events('genapi.hook.after.stop', of('h-pass')).length === 1);
    const seen = t.lines.filter((l) => l.metadata && l.metadata.request_id === 'h-pass').map((l) => l.name);
    assert.deepEqual(seen, ['genapi.hook.before.start', 'genapi.hook.before.stop',
      'genapi.hook.after.start', 'genapi.hook.after.stop']);
    for (const l of t.lines.filter((x) => x.metadata && x.metadata.request_id === 'h-pass')) {
      assert.equal(l.metadata.service, 'test_service');
      assert.equal(l.metadata.request_type, 'hooked');
      assert.equal(l.metadata.user_id, undefined); // never a user id
      if (l.name.endsWith('.start')) {
        assert.deepEqual(l.measurements, {});
      } else {
        assert.equal(l.metadata.success, true);
        assert.ok(Number.isInteger(l.measurements.duration_us) && l.measurements.duration_us > 0, JSON.stringify(l));
      }
    }

    // The before hook refuses: its stop says so; no after hook runs.
    assert.equal((await ask('h-refuse', 'refuse')).success, false);
    await eventually(() => t.events('genapi.hook.before.stop', of('h-refuse')).length === 1);
    let e = t.events('genapi.hook.before.stop', of('h-refuse'))[0];
    assert.equal(e.metadata.success, false);
    assert.equal(e.metadata.reason, 'refused');

    // Past the 500 ms hook_timeout: an exception, reason timeout, its duration about that.
    assert.equal((await ask('h-slow', 'slow')).error, 'Hook timed out');
    await eventually(() => t.events('genapi.hook.before.exception', of('h-slow')).length === 1);
    e = t.events('genapi.hook.before.exception', of('h-slow'))[0];
    assert.equal(e.metadata.reason, 'timeout');
    assert.equal(e.metadata.success, false);
    assert.ok(e.measurements.duration_us >= 450000, JSON.stringify(e));

    // A before hook that answers nothing (an internal error): an exception, reason failed.
    assert.equal((await ask('h-crash', 'crash')).error, 'Hook failed');
    await eventually(() => t.events('genapi.hook.before.exception', of('h-crash')).length === 1);
    assert.equal(t.events('genapi.hook.before.exception', of('h-crash'))[0].metadata.reason, 'failed');

    // After hooks: an error answer (the result stands) is a stop with reason error; one past
    // the timeout an exception.
    assert.equal((await ask('h-afail', 'after_fail')).success, true);
    await eventually(() => t.events('genapi.hook.after.stop', of('h-afail')).length === 1);
    e = t.events('genapi.hook.after.stop', of('h-afail'))[0];
    assert.deepEqual([e.metadata.success, e.metadata.reason], [false, 'error']);
    assert.equal((await ask('h-aslow', 'after_slow')).success, true);
    await eventually(() => t.events('genapi.hook.after.exception', of('h-aslow')).length === 1);
    assert.equal(t.events('genapi.hook.after.exception', of('h-aslow'))[0].metadata.reason, 'timeout');
    // Every start has its end.
    for (const kind of ['before', 'after']) {
      const starts = t.events(`genapi.hook.${kind}.start`).length;
      const ends = t.events(`genapi.hook.${kind}.stop`).length + t.events(`genapi.hook.${kind}.exception`).length;
      assert.equal(ends, starts, kind);
    }
  } catch (err) {
    stack.dumpLogs();
    for (const t of tails) console.error(t.stderr);
    throw err;
  } finally {
    for (const t of tails) await t.stop();
    await stack.stop();
  }
});

test('relay events over two gateways, and the connection events', async () => {
  const stack = await startStack({ workers: [], gatewayArgs: GATEWAY, brokerArgs: ['--set', 'admin_actions=status,tail'] });
  const tails = [];
  try {
    const gwB = await stack.startGateway();
    const bk = tail(['genapi.relay', '--broker-http', `127.0.0.1:${stack.broker.metricsPort}`]);
    const ta = tail(['--gateway-http', `127.0.0.1:${stack.gateway.metricsPort}`]);
    const tb = tail(['genapi.relay', '--gateway-http', `127.0.0.1:${gwB.metricsPort}`]);
    tails.push(bk, ta, tb);
    for (const t of tails) await t.attached();

    const chat = (ch, id, request_type, args) => call(ch, { request_id: id, service: 'chat_service', request_type, args });
    const alice = connect(stack.url, { token: token('alice') }, stack);
    const { channel: aliceLobby } = await join(alice);
    const { channel: bobLobby } = await join(connect(gwB.url, { token: token('bob') }, stack));
    const carolSocket = connect(gwB.url, { token: token('carol') }, stack);
    const { channel: carolLobby } = await join(carolSocket);

    assert.equal((await chat(aliceLobby, 'rc-1', 'create_group', { group_id: 'tg', group_type: 'public' })).success, true);
    assert.equal((await chat(bobLobby, 'rj-1', 'join_group', { group_id: 'tg' })).success, true);
    assert.equal((await chat(carolLobby, 'rj-2', 'join_group', { group_id: 'tg' })).success, true);
    await eventually(() => bk.events('genapi.relay.join').length === 3);
    const joins = bk.events('genapi.relay.join');
    assert.deepEqual(joins.map((l) => [l.metadata.request_id, l.metadata.reason, l.metadata.group_id]),
      [['rc-1', 'create', 'tg'], ['rj-1', 'join', 'tg'], ['rj-2', 'join', 'tg']]);

    // One send: the broker's send counts the receivers (3); each gateway delivers once,
    // counting its own members (alice on A; bob and carol on B).
    const r = await chat(aliceLobby, 'rs-1', 'send_message', { group_id: 'tg', message: 'hi' });
    assert.deepEqual(r.result, { status: 'relayed', recipients_count: 3 });
    await eventually(() => bk.events('genapi.relay.send').length === 1 &&
      ta.events('genapi.relay.deliver').length === 1 && tb.events('genapi.relay.deliver').length === 1);
    const send = bk.events('genapi.relay.send')[0];
    assert.deepEqual([send.measurements.count, send.metadata.group_id, send.metadata.request_id], [3, 'tg', 'rs-1']);
    const da = ta.events('genapi.relay.deliver')[0];
    const db = tb.events('genapi.relay.deliver')[0];
    assert.deepEqual([da.measurements.count, da.metadata.group_id, da.metadata.request_id], [1, 'tg', 'rs-1']);
    assert.deepEqual([db.measurements.count, db.metadata.group_id], [2, 'tg']);

    // Leaving: by the built-in (count 1, reason leave), and by closing the socket (disconnect).
    assert.equal((await chat(bobLobby, 'rl-1', 'leave_group', { group_id: 'tg' })).success, true);
    await eventually(() => bk.events('genapi.relay.leave').length === 1);
    let leave = bk.events('genapi.relay.leave')[0];
    assert.deepEqual([leave.measurements.count, leave.metadata.reason, leave.metadata.group_id], [1, 'leave', 'tg']);
    carolSocket.disconnect();
    await eventually(() => bk.events('genapi.relay.leave').length === 2);
    leave = bk.events('genapi.relay.leave')[1];
    assert.deepEqual([leave.measurements.count, leave.metadata.reason], [1, 'disconnect']);

    // The connection events of gateway A: connect and join of alice's socket, an auth
    // failure for a bad token, and alice's disconnect.
    const bad = connect(stack.url, { token: 'not-a-jwt' }, stack);
    await eventually(() => ta.events('genapi.connection.auth_failure').length >= 1);
    bad.disconnect();
    assert.ok(ta.events('genapi.connection.auth_failure')[0].metadata.reason);
    assert.ok(ta.events('genapi.connection.join', (l) => l.metadata.topic === 'api:lobby').length >= 1);
    const connects = ta.events('genapi.connection.connect').length;
    assert.ok(connects >= 1);
    alice.disconnect();
    await eventually(() => ta.events('genapi.connection.disconnect').length >= 1);
    assert.equal(ta.events('genapi.connection.disconnect')[0].metadata.success, true);
  } catch (err) {
    stack.dumpLogs();
    for (const t of tails) console.error(t.stderr);
    throw err;
  } finally {
    for (const t of tails) await t.stop();
    await stack.stop();
  }
});
