// SPDX-License-Identifier: MIT
// Config pull through real processes (docs/protocol.md, "Config pull"): the broker asks each
// registered worker for its table every pull_interval_ms, first through PULL_VERSION. A table
// that changes at run time (genapi-test-worker's `offer` turns on its withdrawn function
// `late`, without a push) reaches the gateway through a pull; an unchanged version stops at
// PULL_VERSION (genapi-ctl status counts the pulls); a worker that never answers the pull is
// asked again after pull_interval × 2^failures; service_configs chooses the services.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { BIN, Proc, startStack, startBroker, startWorker, connect, join, call, eventually } = require('../support/stack');

// genapi-ctl status against `broker`: resolves the reply's JSON.
function status(broker) {
  return new Promise((resolve, reject) => execFile(path.join(BIN, 'genapi-ctl'),
    ['status', '--broker', broker.endpoints.gateways], { timeout: 15000 },
    (err, stdout, stderr) => {
      if (err) return reject(new Error(`genapi-ctl: ${stderr}`));
      resolve(JSON.parse(stdout));
    }));
}

// The broker's genapi_config_events_total{event=NAME} from /metrics (telemetry events).
function configEvents(broker, name) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: broker.metricsPort, path: '/metrics', timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => {
        const m = new RegExp(`^genapi_config_events_total\\{event="${name.replace('.', '\\.')}"\\} (\\d+)$`, 'm').exec(body);
        resolve(m ? Number(m[1]) : 0);
      });
    }).on('error', reject);
  });
}

test('a table changed at run time reaches the gateway through a pull, not a push', async () => {
  const stack = await startStack({ workers: ['genapi-test-worker'], brokerArgs: ['--set', 'pull_interval_ms=500'] });
  try {
    const { channel } = await join(connect(stack.url, {}, stack));
    let n = 0;
    const late = () => call(channel, { service: 'test_service', request_type: 'late', request_id: `l${++n}` });
    // Withdrawn: never pushed, so unknown everywhere.
    const before = await late();
    assert.deepEqual([before.success, before.error], [false, 'Unknown function']);
    const offered = await call(channel, { service: 'test_service', request_type: 'offer', request_id: 'o1',
      args: { name: 'late' } });
    assert.deepEqual(offered.result, { name: 'late', offered: true });
    // The worker pushes nothing; the broker's next pull finds the new version and the table.
    const served = await eventually(async () => {
      const r = await late();
      return r.success && r;
    }, 15000);
    assert.equal(typeof served.result.node, 'string');
    const st = await status(stack.broker);
    assert.ok(st.pulls.full_pulls >= 1, JSON.stringify(st.pulls));
    assert.ok(st.pulls.changes >= 1, JSON.stringify(st.pulls));
    assert.equal(st.pulls.failures, 0);
    // Withdrawn again: the next pull takes it away (after the registry's grace period).
    await call(channel, { service: 'test_service', request_type: 'offer', request_id: 'o2',
      args: { name: 'late', offered: false } });
    const gone = await eventually(async () => {
      const r = await late();
      return r.error === 'Unknown function' && r;
    }, 15000);
    assert.equal(gone.success, false);
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    await stack.stop();
  }
});

test('a pull whose version is unchanged stops at PULL_VERSION', async () => {
  const stack = await startStack({ workers: ['genapi-test-worker'], brokerArgs: ['--set', 'pull_interval_ms=200'] });
  try {
    const st = await eventually(async () => {
      const s = await status(stack.broker);
      return s.pulls.version_pulls >= 5 && s;
    }, 15000);
    assert.equal(st.pulls.full_pulls, 0, JSON.stringify(st.pulls));
    assert.ok(st.pulls.skipped >= 4, JSON.stringify(st.pulls));
    assert.equal(st.pulls.changes, 0);
    assert.equal(st.pulls.interval_ms, 200);
    assert.equal(st.pulls.timeout_ms, 5000);
    assert.equal(st.pulls.workers.length, 1);
    assert.equal(st.pulls.workers[0].service, 'test_service');
    assert.equal(st.pulls.workers[0].failures, 0);
    // Each pull is a genapi.config.pull.start/.stop telemetry pair.
    assert.ok(stack.broker.metricsPort > 0);
    assert.ok(await configEvents(stack.broker, 'pull.stop') >= 5);
    assert.ok(await configEvents(stack.broker, 'pull.start') >= 5);
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    await stack.stop();
  }
});

test('service_configs: version_check false pulls whole tables; an unlisted service is not pulled', async () => {
  const broker = await startBroker({ args: ['--set', 'pull_interval_ms=200',
    '--set', 'service_configs=[{"service": "test_service", "version_check": false}]'] });
  const procs = [broker];
  try {
    procs.push(await startWorker('genapi-test-worker', broker));
    procs.push(await startWorker('user_service', broker));
    const st = await eventually(async () => {
      const s = await status(broker);
      return s.pulls.full_pulls >= 3 && s;
    }, 15000);
    assert.equal(st.pulls.version_pulls, 0, JSON.stringify(st.pulls));
    assert.equal(st.pulls.changes, 0, 'an unchanged table changes nothing');
    assert.deepEqual(st.pulls.workers.map((w) => w.service), ['test_service']);
  } finally {
    const errors = [];
    for (const p of procs.reverse()) {
      try { await p.stop(); } catch (e) { errors.push(e); }
    }
    if (errors.length) throw errors[0];
  }
});

test('a malformed service_configs stops the broker naming the field', async () => {
  for (const [value, field] of [['[{"svc": "x"}]', 'service_configs[0].svc'],
    ['{"service": "x"}', 'service_configs'], ['[{"service": "x", "version_check": 1}]', 'service_configs[0].version_check']]) {
    const r = await new Promise((resolve) => execFile(path.join(BIN, 'genapi-broker'),
      ['--set', 'worker_endpoint=tcp://127.0.0.1:*', '--set', 'gateway_endpoint=tcp://127.0.0.1:*',
        '--set', 'stream_in_endpoint=tcp://127.0.0.1:*', '--set', 'stream_out_endpoint=tcp://127.0.0.1:*',
        '--set', `service_configs=${value}`], { timeout: 15000 },
      (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr })));
    assert.notEqual(r.code, 0, `${value} accepted`);
    assert.doesNotMatch(r.stdout, /READY/);
    assert.ok(r.stderr.includes(field), `${value}: ${r.stderr}`);
  }
});

test('a worker that does not answer pulls is asked less and less often', async () => {
  const broker = await startBroker({ args: ['--set', 'pull_interval_ms=200', '--set', 'pull_timeout_ms=100'] });
  const register = JSON.stringify({ node: 'mute', service: 'mute_service', config_version: 'm1', session: 7,
    functions: [{ service: 'mute_service', request_type: 'hello' }] });
  // Registered, alive (it answers heartbeats), silent to PULL_VERSION.
  const mute = new Proc('genapi-test-peer', ['--connect', broker.endpoints.workers, '--answer-heartbeats',
    '--listen', '30000', '--send', 'REGISTER', register]);
  try {
    await mute.waitForLine(/^RECV REGISTERED .*"ok":true/);
    const st = await eventually(async () => {
      const s = await status(broker);
      const w = s.pulls.workers.find((x) => x.service === 'mute_service');
      return w && w.failures >= 4 && { s, w };
    }, 25000);
    // Each failure doubles the wait: pull_interval × 2^failures.
    assert.equal(st.w.backoff_ms, 200 * 2 ** st.w.failures);
    assert.equal(st.s.pulls.skipped, 0);
    assert.equal(st.s.pulls.full_pulls, 0);
    assert.ok(st.s.pulls.failures >= 4);
    // Still registered: a silent pull is not a dead worker.
    assert.ok(st.s.workers.some((w) => w.node === 'mute'), JSON.stringify(st.s.workers));
    const asked = mute.lines.filter((l) => l.startsWith('RECV PULL_VERSION ')).length;
    assert.ok(asked >= 4 && asked <= st.w.failures + 1, `asked ${asked} times for ${st.w.failures} failures`);
  } catch (e) {
    console.error(`----- broker -----\n${broker.stderr}`);
    throw e;
  } finally {
    mute.kill('SIGKILL');
    await broker.stop();
  }
});
