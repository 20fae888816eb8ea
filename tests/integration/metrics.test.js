// SPDX-License-Identifier: MIT
// The admin listeners of a real gateway and broker (docs/operations.md, "Metrics and health"):
// /metrics parsed as Prometheus text, its counters and histogram buckets moving as calls are
// made; /healthz and /readyz codes (the gateway's /readyz turns 503 when the broker goes);
// metrics_listen beyond loopback refused without insecure_bind.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { BIN, startBroker, startStack, connect, join, call, eventually } = require('../support/stack');

function get(port, urlPath) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

// Parses the Prometheus text exposition format (version 0.0.4): returns { types, samples }
// where samples maps 'name{sorted labels}' to a number. Fails on any line it cannot read, on a
// sample whose family has no TYPE, and on a family declared twice.
function parseMetrics(text) {
  const types = new Map();
  const samples = new Map();
  assert.ok(text.endsWith('\n'), 'the exposition ends with a newline');
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m;
    if ((m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$/.exec(line))) continue;
    if ((m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line))) {
      assert.ok(!types.has(m[1]), `TYPE of ${m[1]} declared twice`);
      types.set(m[1], m[2]);
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `unreadable line: ${line}`);
    const [, name, labelText = '', value] = m;
    const labels = [];
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/y;
    let at = 0;
    while (at < labelText.length) {
      re.lastIndex = at;
      const lm = re.exec(labelText);
      assert.ok(lm, `unreadable labels: ${labelText}`);
      labels.push(`${lm[1]}="${lm[2]}"`);
      at = re.lastIndex;
    }
    const family = types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
    assert.ok(types.has(family), `sample ${name} has no TYPE`);
    const v = value === '+Inf' ? Infinity : Number(value);
    assert.ok(!Number.isNaN(v), `not a number: ${line}`);
    samples.set(`${name}{${labels.sort().join(',')}}`, v);
  }
  return { types, samples };
}

function key(name, labels = {}) {
  return `${name}{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort().join(',')}}`;
}

async function scrape(port) {
  const r = await get(port, '/metrics');
  assert.equal(r.status, 200);
  assert.match(r.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  return parseMetrics(r.body);
}

test('gateway and broker /metrics counters and histogram buckets move with calls', async () => {
  const stack = await startStack({ workers: ['user_service'] });
  try {
    const gw = stack.gateway.metricsPort;
    const bk = stack.broker.metricsPort;
    assert.ok(gw > 0 && bk > 0, 'both READY lines name their metrics port');
    assert.notEqual(gw, Number(new URL(stack.url).port), 'never the public WebSocket port');
    const fn = { service: 'user_service', request_type: 'get_user' };
    const before = await scrape(gw);
    const bkBefore = await scrape(bk);
    assert.equal(before.types.get('genapi_request_duration_seconds'), 'histogram');
    assert.equal(before.samples.get(key('genapi_requests_total', { ...fn, outcome: 'ok' })), undefined);

    const { channel } = await join(connect(stack.url, {}, stack));
    for (let i = 0; i < 3; i++) {
      const r = await call(channel, { ...fn, request_id: `m${i}`, args: { user_id: '1' } });
      assert.equal(r.success, true);
    }
    const refused = await call(channel, { service: 'user_service', request_type: 'nope', request_id: 'x', args: {} });
    assert.equal(refused.success, false);

    const after = await scrape(gw);
    const s = after.samples;
    assert.equal(s.get(key('genapi_requests_total', { ...fn, outcome: 'ok' })), 3);
    assert.equal(s.get(key('genapi_request_duration_seconds_count', fn)), 3);
    assert.equal(s.get(key('genapi_request_duration_seconds_bucket', { ...fn, le: '+Inf' })), 3);
    assert.ok(s.get(key('genapi_request_duration_seconds_sum', fn)) > 0);
    // Buckets are cumulative: never decreasing with le, ending at the count.
    const buckets = [...s.entries()]
      .filter(([k]) => k.startsWith('genapi_request_duration_seconds_bucket{') && k.includes('request_type="get_user"'))
      .map(([k, v]) => [Number(/le="([^"]+)"/.exec(k)[1].replace('+Inf', 'Infinity')), v])
      .sort((a, b) => a[0] - b[0]);
    assert.ok(buckets.length >= 10);
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i][1] >= buckets[i - 1][1]);
    assert.equal(s.get(key('genapi_refusals_total', { reason: 'unknown_function' })), 1);
    assert.equal(s.get(key('genapi_connection_events_total', { event: 'connect' })), 1);
    assert.equal(s.get(key('genapi_connection_events_total', { event: 'join' })), 1);
    assert.equal(s.get(key('genapi_gateway_connections_open')), 1);
    assert.equal(s.get(key('genapi_gateway_registry_loaded')), 1);
    assert.equal(s.get(key('genapi_telemetry_events_total', { event: 'genapi.executor.request.start' })), 3);

    const bkAfter = await scrape(bk);
    const calls0 = bkBefore.samples.get(key('genapi_broker_calls_total'));
    assert.equal(bkAfter.samples.get(key('genapi_broker_calls_total')) - calls0, 3);
    assert.ok(bkAfter.samples.get(key('genapi_config_events_total', { event: 'push' })) >= 1);
    assert.equal(bkAfter.samples.get(key('genapi_broker_workers')), 1);
    assert.equal(bkAfter.samples.get(key('genapi_build_info', { program: 'genapi-broker', version: '0.1.0' })), 1);

    for (const port of [gw, bk]) {
      assert.equal((await get(port, '/healthz')).status, 200);
      assert.equal((await get(port, '/readyz')).status, 200);
      assert.equal((await get(port, '/nope')).status, 404);
    }
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    await stack.stop();
  }
});

test('the gateway /readyz turns 503 when the broker goes silent, /healthz stays 200', async () => {
  const stack = await startStack({ workers: ['user_service'] });
  try {
    const gw = stack.gateway.metricsPort;
    assert.equal((await get(gw, '/readyz')).status, 200);
    stack.broker.kill('SIGKILL');
    await stack.broker.exitPromise;
    await eventually(async () => {
      const r = await get(gw, '/readyz');
      assert.equal(r.status, 503);
      assert.match(r.body, /broker not heard/);
      return true;
    }, 15000);
    assert.equal((await get(gw, '/healthz')).status, 200);
    const m = await scrape(gw);
    assert.equal(m.samples.get(key('genapi_gateway_broker_connected')), 0);
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    stack.procs.splice(stack.procs.indexOf(stack.broker), 1); // killed on purpose
    await stack.stop();
  }
});

function run(name, args) {
  return new Promise((resolve) => {
    execFile(path.join(BIN, name), args, { timeout: 10000 }, (err, stdout, stderr) => {
      resolve({ code: err ? err.code : 0, stdout, stderr });
    });
  });
}

test('metrics_listen beyond loopback is refused without insecure_bind', async () => {
  const b = await run('genapi-broker', ['--set', 'metrics_listen=0.0.0.0:0']);
  assert.equal(b.code, 2);
  assert.match(b.stderr, /metrics_listen: 0\.0\.0\.0:0 listens beyond loopback/);
  assert.match(b.stderr, /insecure_bind/);
  const g = await run('genapi-gateway', ['--set', 'metrics_listen=0.0.0.0:0', '--set', 'listen=127.0.0.1:0']);
  assert.equal(g.code, 2);
  assert.match(g.stderr, /metrics_listen: 0\.0\.0\.0:0 listens beyond loopback/);
  const bad = await run('genapi-broker', ['--set', 'metrics_listen=nonsense']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /metrics_listen/);
});

test('metrics_listen beyond loopback with insecure_bind serves, and empty disables', async () => {
  const broker = await startBroker({ args: ['--set', 'metrics_listen=0.0.0.0:0', '--set', 'insecure_bind=true'] });
  try {
    assert.ok(broker.metricsPort > 0);
    assert.equal((await get(broker.metricsPort, '/healthz')).status, 200);
  } finally {
    await broker.stop();
  }
  const off = await startBroker({ args: ['--set', 'metrics_listen='] });
  try {
    assert.equal(off.metricsPort, 0);
  } finally {
    await off.stop();
  }
});

test('a rate-limit refusal moves the exceeded counter (by key name, never its value) and the refusals', async () => {
  const stack = await startStack({
    workers: ['genapi-test-worker'],
    gatewayArgs: ['--set', `rate_limits=${JSON.stringify({
      enabled: true,
      api_limits: [{ service: 'test_service', request_type: 'echo', key: 'value', max_requests: 1, window_ms: 60000 }],
    })}`],
  });
  try {
    const { channel } = await join(connect(stack.url, {}, stack));
    const echo = (id) => call(channel, { request_id: id, service: 'test_service', request_type: 'echo', args: { value: 'secret-value' } });
    assert.equal((await echo('r1')).success, true);
    assert.equal((await echo('r2')).error, 'Rate limit exceeded');
    const r = await get(stack.gateway.metricsPort, '/metrics');
    const { samples } = parseMetrics(r.body);
    assert.equal(samples.get(key('genapi_rate_limit_exceeded_total', { key: 'value', scope: 'gateway' })), 1);
    assert.equal(samples.get(key('genapi_rate_limit_checks_total', { scope: 'gateway' })), 2);
    assert.equal(samples.get(key('genapi_refusals_total', { reason: 'rate_limited' })), 1);
    assert.doesNotMatch(r.body, /secret-value/);
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    await stack.stop();
  }
});

test('genapi-ctl events lists every event with its measurements', async () => {
  const r = await run('genapi-ctl', ['events']);
  assert.equal(r.code, 0);
  const lines = r.stdout.trim().split('\n');
  const names = lines.map((l) => l.split(/\s+/)[0]);
  for (const group of ['executor', 'rate_limiter', 'hook', 'worker_pool', 'config', 'connection', 'relay']) {
    assert.ok(names.some((n) => n.startsWith(`genapi.${group}.`)), group);
  }
  assert.ok(names.includes('genapi.executor.request.stop'));
  assert.match(lines.find((l) => l.startsWith('genapi.executor.request.stop ')), /duration_us$/);
  // Every declared event is emitted now (hooks and relay included): none is marked.
  assert.doesNotMatch(r.stdout, /not emitted yet/);
  assert.match(lines.find((l) => l.startsWith('genapi.hook.before.stop ')), /duration_us$/);
  assert.match(lines.find((l) => l.startsWith('genapi.relay.deliver ')), /count$/);
  assert.equal(new Set(names).size, names.length);
  const relay = await run('genapi-ctl', ['events', 'genapi.relay']);
  assert.equal(relay.code, 0);
  assert.ok(relay.stdout.trim().split('\n').every((l) => l.startsWith('genapi.relay.')));
  assert.equal((await run('genapi-ctl', ['events', 'nope'])).code, 1);
  // genapi-ctl tail: tests/integration/ctl_tail.test.js.
});
