// SPDX-License-Identifier: MIT
// The walkthrough's IEx helpers as genapi-ctl subcommands against a live stack
// (docs/operations.md, "genapi-ctl"): --help lists every command; cache-status, pool-status
// (a busy handler thread seen through the worker's HEARTBEAT), pushed-services, failed-configs,
// rl-status, rl-global, rl-config, group, call-flow (would pass, version, route, rate limits;
// refused for an unknown, a disabled or a rate-limited call), health, token; the admin gate.
// tail: ctl_tail.test.js; events: metrics.test.js; keygen: security.test.js; the versions,
// rate-limit, stop-stream and group commands: versions, rate_limits, async_stream, relay tests.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const path = require('node:path');
const { execFile, spawn } = require('node:child_process');
const { BIN, startStack, connect, join, call, eventually } = require('../support/stack');

const ACTIONS = 'status,functions,versions,get,get_latest,disable,enable,pool_status,pushed_services,call_flow,'
  + 'rate_limit_config,rate_limit_status,groups,group_info';
const SECRET = 'genapi-ctl-test-secret-0123456789abcdef';
const LIMITS = {
  enabled: true,
  global_limits: [{ key: 'user_id', max_requests: 3, window_ms: 60000 }],
  api_limits: [{ service: 'user_service', request_type: 'get_user', key: 'user_id', max_requests: 100, window_ms: 60000 }],
};

// genapi-ctl ARGS against `stack`'s broker: resolves {code, json, stdout, stderr}.
function ctl(stack, args, { broker = true } = {}) {
  const extra = broker ? ['--broker', stack.broker.endpoints.gateways] : [];
  return new Promise((resolve) => execFile(path.join(BIN, 'genapi-ctl'), [...args, ...extra], { timeout: 15000 },
    (err, stdout, stderr) => {
      let json = null;
      try { json = JSON.parse(stdout); } catch (e) { /* the caller looks at stdout/stderr */ }
      resolve({ code: err ? err.code : 0, json, stdout, stderr });
    }));
}

function register(broker, body) {
  return new Promise((resolve, reject) => {
    const p = spawn(path.join(BIN, 'genapi-test-register'), [broker.endpoints.workers, JSON.stringify(body)]);
    let stdout = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(stdout)) : reject(new Error(`exit ${code}`))));
  });
}

function freePort() {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
  });
}

test('genapi-ctl --help lists every subcommand', async () => {
  const r = await ctl(null, ['--help'], { broker: false });
  assert.equal(r.code, 0);
  for (const cmd of ['cache-status', 'pool-status', 'rl-status', 'rl-global', 'rl-config', 'pushed-services',
    'failed-configs', 'groups', 'group GROUP', 'events', 'tail', 'stop-stream', 'functions', 'call-flow', 'health',
    'keygen', 'token', 'status', 'versions', 'get', 'disable|enable|delete', 'add-config', 'clear [SERVICE]', 'verify', 'group-info',
    'group-delete', 'rate-limit', 'genapi-call']) {
    assert.ok(r.stdout.includes(cmd), `--help names ${cmd}`);
  }
  assert.equal((await ctl(null, ['no-such-command'], { broker: false })).code, 2);
});

test('the IEx helpers against a live stack', async () => {
  const stack = await startStack({
    workers: ['user_service', 'genapi-test-worker'],
    brokerArgs: ['--set', `admin_actions=${ACTIONS}`],
    gatewayArgs: ['--set', 'auth=jwt', '--set', `jwt_secret=${SECRET}`,
      '--set', `rate_limits=${JSON.stringify(LIMITS)}`],
  });
  try {
    // token: a development JWT the gateway accepts (alice's calls are counted under her id).
    const tok = await ctl(stack, ['token', '--sub', 'alice', '--secret', SECRET, '--ttl', '600'], { broker: false });
    assert.equal(tok.code, 0, tok.stderr);
    const token = tok.stdout.trim();
    assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    const { channel } = await join(connect(stack.url, { token }, stack));
    let n = 0;
    const callAs = (service, request_type, args) => call(channel, { service, request_type, request_id: `c${++n}`, args });

    // cache-status: service -> function -> versions.
    const cache = await ctl(stack, ['cache-status']);
    assert.equal(cache.code, 0, cache.stderr);
    assert.deepEqual(cache.json.versions.user_service.get_user.map((v) => v.version), ['1.0.0']);
    assert.ok(cache.json.versions.test_service.echo);
    assert.deepEqual(Object.keys((await ctl(stack, ['cache-status', 'user_service'])).json.versions), ['user_service']);

    // pushed-services: each service's last processed table.
    const pushed = await ctl(stack, ['pushed-services']);
    assert.equal(pushed.code, 0, pushed.stderr);
    assert.deepEqual(pushed.json.services.map((s) => s.service), ['test_service', 'user_service']);
    for (const s of pushed.json.services) {
      assert.equal(typeof s.config_version, 'string');
      assert.ok(s.functions > 0);
      assert.equal(s.workers, 1);
      assert.ok(s.at_ms > 1600000000000);
    }

    // pool-status: the worker's pool from its HEARTBEAT; a sleeping call keeps one thread busy.
    const pool0 = await ctl(stack, ['pool-status', 'test_service']);
    assert.equal(pool0.code, 0, pool0.stderr);
    assert.equal(pool0.json.workers.length, 1);
    const sleeping = call(channel, { service: 'test_service', request_type: 'sleep', request_id: 'zz', args: { ms: 2500 } }, 15000);
    await eventually(async () => {
      const w = (await ctl(stack, ['pool-status', 'test_service'])).json.workers[0];
      return w.busy === 1 && w.idle === w.threads - 1 && w.inflight === 1;
    }, 10000, 100);
    await sleeping;
    const w = await eventually(async () => {
      const x = (await ctl(stack, ['pool-status'])).json.workers.find((v) => v.service === 'test_service');
      return x.busy === 0 && x.inflight === 0 ? x : null;
    }, 10000, 100);
    assert.equal(w.threads, 4);
    assert.equal(w.idle, 4);
    assert.equal(w.queued, 0);
    assert.equal(w.queue_max, 256);
    assert.equal(w.circuit, 'closed');

    // failed-configs: a table with a bad config, refused with its reason.
    await register(stack.broker, { node: 'bad@test', service: 'bad_service', config_version: '1',
      functions: [{ service: 'bad_service', request_type: 'broken', timeout: 1 }] });
    const failed = await ctl(stack, ['failed-configs']);
    assert.equal(failed.code, 0, failed.stderr);
    assert.deepEqual(failed.json.failed_configs.map(({ service, function: f, reason }) => ({ service, function: f, reason })),
      [{ service: 'bad_service', function: 'broken', reason: 'timeout: must be 100..300000 ms' }]);

    // rl-config and rl-global: every gateway's config, and its global limits alone.
    const rlc = await ctl(stack, ['rl-config']);
    assert.equal(rlc.code, 0, rlc.stderr);
    assert.equal(rlc.json.gateways.length, 1);
    assert.deepEqual(rlc.json.gateways[0].config.global_limits.map((l) => l.max_requests), [3]);
    const rlg = await ctl(stack, ['rl-global']);
    assert.equal(rlg.code, 0, rlg.stderr);
    assert.equal(rlg.json.gateways.length, 1);
    assert.deepEqual(rlg.json.gateways[0].global_limits.map(({ key, max_requests, window_ms }) => ({ key, max_requests, window_ms })),
      [{ key: 'user_id', max_requests: 3, window_ms: 60000 }]);
    assert.equal(rlg.json.missing, 0);

    // call-flow: it would pass, with the version chosen and the one node it would go to.
    const flow = await ctl(stack, ['call-flow', 'user_service', 'get_user']);
    assert.equal(flow.code, 0, flow.stdout + flow.stderr);
    assert.equal(flow.json.would_pass, true);
    assert.equal(flow.json.config.version, '1.0.0');
    assert.equal(flow.json.enabled, true);
    assert.equal(flow.json.route.candidates.length, 1);
    assert.equal(flow.json.route.would_pick, flow.json.route.candidates[0].node);
    assert.match(flow.json.route.would_pick, /user_service/);
    assert.deepEqual(flow.json.rate_limits.gateways[0].limits.map((l) => l.max_requests).sort((a, b) => a - b), [3, 100]);

    // Two more calls by alice (the sleep was her first): rl-status shows her global window
    // full, and call-flow --user alice refuses.
    for (let i = 0; i < 2; i++) assert.equal((await callAs('user_service', 'get_user', { user_id: '1' })).success, true);
    const rls = await ctl(stack, ['rl-status', 'alice']);
    assert.equal(rls.code, 0, rls.stderr);
    const global = rls.json.gateways[0].limits.find((l) => l.scope === 'global');
    assert.deepEqual([global.current, global.remaining], [3, 0]);
    const limited = await ctl(stack, ['call-flow', 'user_service', 'get_user', '--user', 'alice']);
    assert.equal(limited.code, 1, limited.stdout);
    assert.equal(limited.json.would_pass, false);
    assert.equal(limited.json.refusal, 'Rate limit exceeded');
    assert.equal((await callAs('user_service', 'get_user', { user_id: '1' })).success, false); // as it said

    // call-flow refusals: unknown function, disabled version (nothing is called).
    const unknown = await ctl(stack, ['call-flow', 'user_service', 'nope']);
    assert.deepEqual([unknown.code, unknown.json.would_pass, unknown.json.refusal], [1, false, 'Unknown function']);
    assert.equal((await ctl(stack, ['disable', 'user_service', 'list_users', '1.0.0'])).code, 0);
    const disabled = await ctl(stack, ['call-flow', 'user_service', 'list_users', '1.0.0']);
    assert.deepEqual([disabled.code, disabled.json.refusal, disabled.json.operator], [1, 'Function disabled', 'disabled']);
    assert.equal((await ctl(stack, ['enable', 'user_service', 'list_users', '1.0.0'])).code, 0);
    const back = await ctl(stack, ['call-flow', 'user_service', 'list_users', '1.0.0']);
    assert.equal(back.json.would_pass, true, back.stdout);

    // groups and group GROUP (no group yet: the broker says so).
    assert.deepEqual((await ctl(stack, ['groups'])).json.groups, []);
    const group = await ctl(stack, ['group', 'nope']);
    assert.deepEqual([group.code, group.json.ok, group.json.error], [1, false, 'group not found']);

    // The admin gate: a wrong token is refused by name.
    const refused = await ctl(stack, ['pool-status', '--token', 'wrong']);
    assert.deepEqual([refused.code, refused.json.error], [1, 'admin token required']);

    // health: both processes' /healthz and /readyz; an unreachable broker listener fails it.
    const gwHttp = `127.0.0.1:${stack.gateway.metricsPort}`;
    const health = await ctl(stack, ['health', '--gateway-http', gwHttp, '--broker-http', `127.0.0.1:${stack.broker.metricsPort}`], { broker: false });
    assert.equal(health.code, 0, health.stdout + health.stderr);
    assert.deepEqual(health.json.gateway.healthz, { status: 200, body: 'ok' });
    assert.deepEqual(health.json.gateway.readyz, { status: 200, body: 'ready' });
    assert.deepEqual(health.json.broker.readyz, { status: 200, body: 'ready' });
    const down = await ctl(stack, ['health', '--gateway-http', gwHttp, '--broker-http', `127.0.0.1:${await freePort()}`], { broker: false });
    assert.equal(down.code, 1);
    assert.deepEqual([down.json.ok, down.json.broker.healthz.status, down.json.gateway.healthz.status], [false, null, 200]);
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    await stack.stop();
  }
});
