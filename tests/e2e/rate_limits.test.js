// SPDX-License-Identifier: MIT
// Rate limits with real processes: the walkthrough's generate_report at 10 per minute per user
// (the 11th refused with retry_after_ms, another user unaffected), status, reset and runtime
// changes through genapi-ctl (via the broker to every gateway), an argument key, a malformed
// config refused at start, the max_keys cap with fail_open false, and the cluster-wide mode over
// two gateways counting at the broker.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { execFile } = require('node:child_process');
const {
  BIN, Proc, startBroker, startWorker, startGateway, startStack, connect, join, call,
} = require('../support/stack');
const { sign, now } = require('../support/jwt');

const SECRET = 'test-secret-for-the-rate-limit-tests';
const ADMIN_ACTIONS = 'admin_actions=status,functions,stop_stream,rate_limit_config,' +
  'rate_limit_status,rate_limit_reset,rate_limit_add,rate_limit_remove,rate_limit_set';

// The walkthrough's limits (section 4), as config/gateway.dev.json has them.
const WALKTHROUGH_LIMITS = {
  enabled: true,
  global_limits: [
    { key: 'user_id', max_requests: 1000, window_ms: 60000 },
    { key: 'device_id', max_requests: 5000, window_ms: 60000 },
  ],
  api_limits: [
    { service: 'report_service', request_type: 'generate_report', key: 'user_id', max_requests: 10, window_ms: 60000 },
  ],
};

const token = (sub) => sign({ sub, exp: now() + 600 }, SECRET);

// Runs genapi-ctl against the broker; resolves {code, json, stderr}.
function ctl(broker, args) {
  return new Promise((resolve) => {
    execFile(path.join(BIN, 'genapi-ctl'), [...args, '--broker', broker.endpoints.gateways],
      (err, stdout, stderr) => {
        let json = null;
        try { json = JSON.parse(stdout); } catch (e) { /* not JSON: left null */ }
        resolve({ code: err ? err.code : 0, json, stdout, stderr });
      });
  });
}

async function userChannel(stack, url, user, params = {}) {
  const { channel } = await join(connect(url, { token: token(user), ...params }, stack));
  return channel;
}

const report = (i) => ({ request_id: `r${i}`, service: 'report_service', request_type: 'generate_report', args: {} });

test('walkthrough limits: the 11th generate_report in a minute is refused with retry_after_ms; status, reset and runtime changes via genapi-ctl', async () => {
  const stack = await startStack({
    workers: ['report_service'],
    brokerArgs: ['--set', ADMIN_ACTIONS],
    gatewayArgs: ['--set', 'auth=jwt', '--set', `jwt_secret=${SECRET}`,
      '--set', `rate_limits=${JSON.stringify(WALKTHROUGH_LIMITS)}`],
  });
  try {
    const u1 = await userChannel(stack, stack.url, 'u1');
    for (let i = 1; i <= 10; i++) {
      const r = await call(u1, report(i));
      assert.equal(r.success, true, JSON.stringify(r));
      assert.equal(r.kind, 'ack');
    }
    const refused = await call(u1, report(11));
    assert.equal(refused.success, false);
    assert.equal(refused.error, 'Rate limit exceeded');
    assert.equal(refused.can_retry, true);
    assert.equal(refused.kind, 'error');
    assert.equal(refused.request_id, 'r11');
    assert.ok(refused.retry_after_ms > 50000 && refused.retry_after_ms <= 60000, JSON.stringify(refused));
    // Other functions stay within the global 1000 per minute; other users have windows of their own.
    const u2 = await userChannel(stack, stack.url, 'u2');
    assert.equal((await call(u2, report('u2'))).success, true);
    // A successful response carries no retry_after_ms.
    assert.equal('retry_after_ms' in (await call(u2, report('u2b'))), false);

    // Status of u1 for generate_report, per gateway: the refused request did not count.
    const st = await ctl(stack.broker, ['rate-limit', 'status', 'u1', '--key', 'user_id',
      '--service', 'report_service', '--request-type', 'generate_report']);
    assert.equal(st.code, 0, st.stdout + st.stderr);
    assert.equal(st.json.gateways.length, 1);
    assert.equal(st.json.missing, 0);
    const limits = st.json.gateways[0].limits;
    const api = limits.find((l) => l.scope === 'api');
    const global = limits.find((l) => l.scope === 'global');
    assert.deepEqual([api.current, api.max, api.window_ms, api.remaining], [10, 10, 60000, 0]);
    assert.ok(api.retry_after_ms > 0);
    assert.deepEqual([global.current, global.max, global.remaining], [10, 1000, 990]);
    assert.match(st.json.gateways[0].gateway, /^gateway@/);

    // Reset u1's generate_report window only: allowed again.
    const rs = await ctl(stack.broker, ['rate-limit', 'reset', 'u1', '--key', 'user_id']);
    assert.equal(rs.code, 0, rs.stdout + rs.stderr);
    assert.equal(rs.json.gateways[0].cleared, 2); // the global user_id window and the function's
    assert.equal((await call(u1, report(12))).success, true);

    // Replace the function's limit at runtime: 1 per minute (a changed limit starts afresh).
    const add = await ctl(stack.broker, ['rate-limit', 'add', '--key', 'user_id', '--service', 'report_service',
      '--request-type', 'generate_report', '--max', '1', '--window-ms', '60000']);
    assert.equal(add.code, 0, add.stdout + add.stderr);
    assert.equal((await call(u1, report(13))).success, true);
    assert.equal((await call(u1, report(14))).error, 'Rate limit exceeded');
    // A malformed limit is refused by every gateway, naming the field; nothing changes.
    const bad = await ctl(stack.broker, ['rate-limit', 'add', '--key', 'user_id', '--max', '0', '--window-ms', '1000']);
    assert.equal(bad.code, 1);
    assert.match(bad.json.error, /max_requests/);
    // Remove it: only the global limits remain.
    const rm = await ctl(stack.broker, ['rate-limit', 'remove', '--key', 'user_id', '--service', 'report_service',
      '--request-type', 'generate_report']);
    assert.equal(rm.code, 0, rm.stdout + rm.stderr);
    assert.equal((await call(u1, report(15))).success, true);
    assert.equal((await call(u1, report(16))).success, true);
    // The whole config, with the refusals counted.
    const cfg = await ctl(stack.broker, ['rate-limit', 'config']);
    assert.equal(cfg.code, 0, cfg.stdout + cfg.stderr);
    const c = cfg.json.gateways[0].config;
    assert.equal(c.enabled, true);
    assert.equal(c.fail_open, true);
    assert.deepEqual(c.api_limits, []);
    assert.equal(c.global_limits.length, 2);
    assert.equal(c.stats.refused, 2);
    // Replace everything: one global limit of 1 per minute on an argument-free key (the address).
    const set = await ctl(stack.broker, ['rate-limit', 'set', JSON.stringify({
      enabled: true, global_limits: [{ key: 'ip_address', max_requests: 1, window_ms: 60000 }],
    })]);
    assert.equal(set.code, 0, set.stdout + set.stderr);
    assert.equal((await call(u2, report('ip1'))).success, true);
    const r = await call(u1, report('ip2')); // another user, the same address
    assert.equal(r.error, 'Rate limit exceeded');
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    await stack.stop();
  }
});

test('rate limits: an argument key counts per value; an admin op is refused unless admin_actions enables it', async () => {
  const stack = await startStack({
    workers: ['genapi-test-worker'],
    gatewayArgs: ['--set', `rate_limits=${JSON.stringify({
      enabled: true,
      api_limits: [{ service: 'test_service', request_type: 'echo', key: 'value', max_requests: 2, window_ms: 60000 }],
    })}`],
  });
  try {
    const { channel } = await join(connect(stack.url, {}, stack));
    const echo = (id, value) => call(channel, { request_id: id, service: 'test_service', request_type: 'echo', args: { value } });
    assert.equal((await echo('a1', 'a')).success, true);
    assert.equal((await echo('a2', 'a')).success, true);
    const refused = await echo('a3', 'a');
    assert.equal(refused.error, 'Rate limit exceeded');
    assert.ok(refused.retry_after_ms > 0);
    assert.equal((await echo('b1', 'b')).success, true);
    // The test broker enables only status, functions and stop_stream.
    const r = await ctl(stack.broker, ['rate-limit', 'config']);
    assert.equal(r.code, 1);
    assert.match(r.json.error, /admin_actions/);
  } finally {
    await stack.stop();
  }
});

test('rate limits: a malformed config refuses the start naming the field', async () => {
  const broker = await startBroker();
  try {
    const p = new Proc('genapi-gateway', ['--set', `broker=${broker.endpoints.gateways}`, '--set', 'listen=127.0.0.1:0',
      '--set', `rate_limits=${JSON.stringify({ enabled: true, api_limits: [{ service: 's', key: 'user_id', max_requests: 1, window_ms: 1 }] })}`]);
    const exit = await p.exitPromise;
    assert.equal(exit.code, 2);
    assert.match(p.stderr, /rate_limits\.api_limits\[0\]\.request_type/);
    const b = new Proc('genapi-broker', ['--set', 'rate_limits={"enabled":true,"max_keys":-1}']);
    assert.equal((await b.exitPromise).code, 2);
    assert.match(b.stderr, /rate_limits\.max_keys/);
  } finally {
    await broker.stop();
  }
});

test('rate limits: with fail_open false a limiter failure (max_keys reached) refuses with Rate limiter unavailable', async () => {
  const stack = await startStack({
    workers: ['genapi-test-worker'],
    gatewayArgs: ['--set', 'auth=jwt', '--set', `jwt_secret=${SECRET}`, '--set', `rate_limits=${JSON.stringify({
      enabled: true, fail_open: false, max_keys: 1,
      global_limits: [{ key: 'user_id', max_requests: 100, window_ms: 60000 }],
    })}`],
  });
  try {
    const echo = { request_id: 'e', service: 'test_service', request_type: 'echo', args: { value: 1 } };
    const u1 = await userChannel(stack, stack.url, 'u1');
    assert.equal((await call(u1, echo)).success, true);
    const u2 = await userChannel(stack, stack.url, 'u2');
    const r = await call(u2, echo);
    assert.equal(r.success, false);
    assert.equal(r.error, 'Rate limiter unavailable');
    assert.equal(r.can_retry, true);
    assert.equal('retry_after_ms' in r, false);
  } finally {
    await stack.stop();
  }
});

test('cluster-wide limits: counted at the broker, a user\'s limit holds across two gateways', async () => {
  const procs = [];
  const sockets = [];
  try {
    const broker = await startBroker({
      args: ['--set', ADMIN_ACTIONS, '--set', `rate_limits=${JSON.stringify({
        enabled: true, scope: 'cluster',
        api_limits: [{ service: 'test_service', request_type: 'echo', key: 'user_id', max_requests: 3, window_ms: 60000 }],
      })}`],
    });
    procs.push(broker);
    procs.push(await startWorker('genapi-test-worker', broker));
    const gwArgs = ['--set', 'auth=jwt', '--set', `jwt_secret=${SECRET}`,
      '--set', 'rate_limits={"enabled":true,"scope":"cluster"}'];
    const a = await startGateway(broker, { args: gwArgs });
    procs.push(a);
    const b = await startGateway(broker, { args: gwArgs });
    procs.push(b);
    const stack = { sockets };
    const onA = await userChannel(stack, a.url, 'u1');
    const onB = await userChannel(stack, b.url, 'u1');
    const echo = (ch, id) => call(ch, { request_id: id, service: 'test_service', request_type: 'echo', args: { value: id } });
    assert.equal((await echo(onA, 'e1')).success, true);
    assert.equal((await echo(onB, 'e2')).success, true);
    assert.equal((await echo(onA, 'e3')).success, true);
    const refused = await echo(onB, 'e4');
    assert.equal(refused.success, false);
    assert.equal(refused.error, 'Rate limit exceeded');
    assert.equal(refused.can_retry, true);
    assert.ok(refused.retry_after_ms > 50000 && refused.retry_after_ms <= 60000, JSON.stringify(refused));
    assert.equal((await echo(onA, 'e5')).error, 'Rate limit exceeded');
    // Another user has a window of its own.
    const u2 = await userChannel(stack, a.url, 'u2');
    const ok = await echo(u2, 'x1');
    assert.equal(ok.success, true);
    assert.deepEqual(ok.result, { value: 'x1' });
    // The broker's own limiter: status and reset through genapi-ctl --cluster.
    const st = await ctl(broker, ['rate-limit', 'status', 'u1', '--cluster']);
    assert.equal(st.code, 0, st.stdout + st.stderr);
    assert.equal(st.json.limits[0].current, 3);
    const rs = await ctl(broker, ['rate-limit', 'reset', 'u1', '--cluster']);
    assert.equal(rs.json.cleared, 1);
    assert.equal((await echo(onB, 'e6')).success, true);
  } finally {
    for (const s of sockets) s.disconnect();
    for (const p of procs.reverse()) await p.stop();
  }
});

// The broker decodes a CALL's payload (its args) only for cluster-wide limits: a limit keyed on
// an argument counts the argument's value from the payload, and a permission check's CALL names
// where the guarded call's args are inside its own (rate_limit.args_in), so the guarded call is
// counted with its check (docs/protocol.md, "Rate limits").
test('cluster-wide limits keyed on an argument read it from the payload, also through a permission check', async () => {
  const broker = await startBroker({
    args: ['--set', `rate_limits=${JSON.stringify({
      enabled: true, scope: 'cluster',
      api_limits: [
        { service: 'test_service', request_type: 'echo', key: 'value', max_requests: 2, window_ms: 60000 },
        { service: 'test_service', request_type: 'guarded_async', key: 'value', max_requests: 1, window_ms: 60000 },
      ],
    })}`],
  });
  const procs = [broker];
  const sockets = [];
  try {
    procs.push(await startWorker('genapi-test-worker', broker));
    const gw = await startGateway(broker, { args: ['--set', 'rate_limits={"enabled":true,"scope":"cluster"}'] });
    procs.push(gw);
    const { channel } = await join(connect(gw.url, {}, { sockets }));
    let n = 0;
    const echo = (value) => call(channel, { request_id: `e${++n}`, service: 'test_service', request_type: 'echo', args: { value } });
    assert.equal((await echo('a')).success, true);
    assert.equal((await echo('a')).success, true);
    const refused = await echo('a');
    assert.deepEqual([refused.success, refused.error], [false, 'Rate limit exceeded']);
    assert.equal((await echo('b')).success, true); // another value, another window
    const guarded = (value) => call(channel, { request_id: `g${++n}`, service: 'test_service', request_type: 'guarded_async', args: { value } });
    assert.equal((await guarded('open')).success, true);
    const second = await guarded('open');
    assert.deepEqual([second.success, second.error], [false, 'Rate limit exceeded']);
  } finally {
    for (const s of sockets) s.disconnect();
    for (const p of procs.reverse()) await p.stop();
  }
});
