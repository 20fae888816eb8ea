// SPDX-License-Identifier: MIT
// The Prometheus exposition checked by Prometheus's own tools (Debian's `prometheus` package,
// installed by tools/install-deps.sh; docs/operations.md, "Metrics and health"):
// `promtool check metrics` on the gateway's and the broker's /metrics after calls (histograms,
// per-function series, label values that need escaping, hook and relay events), failing on any
// complaint; and a real Prometheus server scraping both every second, its query API showing
// the request counter move with the calls made.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { startStack, connect, join, call, eventually } = require('../support/stack');
const { sign, now } = require('../support/jwt');

const SECRET = 'test-secret-for-the-prometheus-tests';
const GATEWAY = ['--set', 'auth=jwt', '--set', `jwt_secret=${SECRET}`, '--set', 'allow_anonymous=true'];

// The absolute path of `name` on PATH; fails the test when the package is not installed.
function which(name) {
  for (const dir of (process.env.PATH || '').split(':')) {
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch (e) { /* next */ }
  }
  assert.fail(`${name} not found: install Debian's prometheus package (tools/install-deps.sh)`);
}

function get(port, urlPath) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

// Runs `cmd args` with `input` on stdin: {code, stdout, stderr}.
function run(cmd, args, input) {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
    p.stdin.end(input);
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const token = (sub) => sign({ sub, exp: now() + 600 }, SECRET);

test('promtool check metrics accepts the gateway and broker exposition after calls', async () => {
  const promtool = which('promtool');
  const stack = await startStack({ workers: ['user_service', 'genapi-test-worker'], gatewayArgs: GATEWAY });
  try {
    const { channel } = await join(connect(stack.url, { token: token('alice') }, stack));
    for (let i = 0; i < 3; i++) {
      const r = await call(channel, { request_id: `p-${i}`, service: 'user_service', request_type: 'get_user', args: { user_id: '1' } });
      assert.equal(r.success, true);
    }
    // Hooks, a handler error, a refusal whose label values need escaping, a relay message.
    assert.equal((await call(channel, { request_id: 'p-h', service: 'test_service', request_type: 'hooked', args: { value: 1 } })).success, true);
    await call(channel, { request_id: 'p-e', service: 'test_service', request_type: 'hooked', args: { value: 1, mode: 'refuse' } });
    const weird = 'we"ird\\name\nline';
    assert.equal((await call(channel, { request_id: 'p-w', service: weird, request_type: 'x', args: {} })).success, false);
    assert.equal((await call(channel, { request_id: 'p-g', service: 'chat_service', request_type: 'create_group', args: { group_id: 'pg' } })).success, true);
    assert.equal((await call(channel, { request_id: 'p-s', service: 'chat_service', request_type: 'send_message', args: { group_id: 'pg', message: 'hi' } })).success, true);

    for (const [who, port] of [['gateway', stack.gateway.metricsPort], ['broker', stack.broker.metricsPort]]) {
      let text;
      await eventually(async () => {
        text = (await get(port, '/metrics')).body;
        return who === 'broker' ? /genapi_telemetry_events_total\{event="genapi\.relay\.send"\}/.test(text)
          : /genapi_telemetry_events_total\{event="genapi\.relay\.deliver"\}/.test(text);
      });
      if (who === 'gateway') {
        // What the check is about is there: a histogram per function, escaped label values.
        assert.match(text, /^# TYPE genapi_request_duration_seconds histogram$/m);
        assert.match(text, /^genapi_request_duration_seconds_bucket\{service="user_service",request_type="get_user",le="\+Inf"\} 3$/m);
        assert.match(text, /^genapi_requests_total\{service="user_service",request_type="get_user",outcome="ok"\} 3$/m);
        assert.ok(text.includes('service="we\\"ird\\\\name\\nline"'), 'escaped label value');
        assert.match(text, /genapi_telemetry_events_total\{event="genapi\.hook\.before\.stop"\} 2/);
      }
      const r = await run(promtool, ['check', 'metrics'], text);
      assert.equal(r.code, 0, `promtool check metrics on the ${who}'s /metrics:\n${r.stdout}${r.stderr}`);
      assert.equal(`${r.stdout}${r.stderr}`.trim(), '', `promtool complained about the ${who}'s /metrics`);
    }
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    await stack.stop();
  }
});

test('a Prometheus server scraping the stack sees the request counter move', async () => {
  const prometheus = which('prometheus');
  const stack = await startStack({ workers: ['user_service'] });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'genapi-prom-'));
  let prom = null;
  let promLog = '';
  try {
    const webPort = await freePort();
    fs.writeFileSync(path.join(dir, 'prometheus.yml'), [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      'scrape_configs:',
      '  - job_name: genapi',
      '    static_configs:',
      `      - targets: ['127.0.0.1:${stack.gateway.metricsPort}', '127.0.0.1:${stack.broker.metricsPort}']`,
      '',
    ].join('\n'));
    prom = spawn(prometheus, [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${webPort}`,
      '--log.level=warn',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    prom.stderr.on('data', (d) => { promLog += d; });
    const exited = new Promise((resolve) => prom.on('exit', (code, signal) => resolve({ code, signal })));
    const query = async (q) => {
      const r = await get(webPort, `/api/v1/query?query=${encodeURIComponent(q)}`);
      assert.equal(r.status, 200, r.body);
      const body = JSON.parse(r.body);
      assert.equal(body.status, 'success', r.body);
      return body.data.result;
    };
    const requests = async () => {
      const r = await query('genapi_requests_total{service="user_service",request_type="get_user",outcome="ok"}');
      assert.ok(r.length <= 1, JSON.stringify(r));
      return r.length ? r[0] : null;
    };
    const calls = async (from, n) => {
      for (let i = from; i < from + n; i++) {
        const r = await call(channel, { request_id: `q-${i}`, service: 'user_service', request_type: 'get_user', args: { user_id: '1' } });
        assert.equal(r.success, true);
      }
    };
    // Calls made while Prometheus starts (its first scrape comes about 5 s after it starts:
    // its target discovery sends updates every 5 s), then more once it has scraped: the
    // counter it stores follows.
    const { channel } = await join(connect(stack.url, {}, stack));
    await calls(0, 5);
    let series;
    await eventually(async () => {
      series = await requests().catch(() => null); // refused until Prometheus listens
      return series && Number(series.value[1]) === 5;
    }, 20000, 250);
    assert.equal(series.metric.instance, `127.0.0.1:${stack.gateway.metricsPort}`);
    assert.equal(series.metric.job, 'genapi');
    await calls(5, 3);
    await eventually(async () => Number((await requests()).value[1]) === 8, 10000, 250);
    // Both targets are up; the broker's own counter was scraped from its listener.
    const up = await query('up{job="genapi"}');
    assert.deepEqual(up.map((u) => u.value[1]), ['1', '1']);
    await eventually(async () => {
      const c = await query('genapi_broker_calls_total');
      return c.length === 1 && Number(c[0].value[1]) >= 8;
    }, 10000, 250);
    prom.kill('SIGTERM');
    const status = await exited;
    prom = null;
    assert.equal(status.code, 0, promLog);
  } catch (e) {
    stack.dumpLogs();
    console.error(`----- prometheus stderr -----\n${promLog}`);
    throw e;
  } finally {
    if (prom) prom.kill('SIGKILL');
    await stack.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
