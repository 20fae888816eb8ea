// SPDX-License-Identifier: MIT
// `make run` (tools/run-dev.sh) on ports other than the defaults: every port is a variable, the
// banner prints the endpoints really in use, a call works through them, and a port that is
// taken is named by the variable that moves it.
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, execFile } = require('node:child_process');
const net = require('node:net');
const path = require('node:path');
const { BIN, connect, join, call } = require('../support/stack');

const ROOT = path.resolve(__dirname, '..', '..');

// A free TCP port on loopback (bound, read, released).
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '0.0.0.0', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function freePorts() {
  const ports = {};
  for (const v of ['GATEWAY_PORT', 'BROKER_WORKER_PORT', 'BROKER_GATEWAY_PORT', 'STREAM_IN_PORT',
    'STREAM_OUT_PORT', 'GATEWAY_METRICS_PORT', 'BROKER_METRICS_PORT']) {
    ports[v] = String(await freePort());
  }
  return ports;
}

// Runs tools/run-dev.sh with `ports`; resolves {child, out()} once `re` is seen or it exits.
function runDev(ports) {
  const child = spawn(path.join(ROOT, 'tools', 'run-dev.sh'), [BIN], {
    cwd: ROOT, env: { ...process.env, ...ports }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => { out += d.toString(); });
  child.stderr.on('data', (d) => { out += d.toString(); });
  const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  const waitFor = (re, timeoutMs = 60000) => new Promise((resolve, reject) => {
    const deadline = Date.now() + timeoutMs;
    const poll = () => {
      if (re.test(out)) return resolve(out);
      if (child.exitCode !== null || Date.now() > deadline) {
        return reject(new Error(`run-dev.sh: no ${re} (exit ${child.exitCode}):\n${out}`));
      }
      setTimeout(poll, 50);
    };
    poll();
  });
  return { child, exited, waitFor, out: () => out };
}

test('make run: every port is a variable, the banner shows the real ones, a call works', async () => {
  const ports = await freePorts();
  const run = runDev(ports);
  try {
    const banner = await run.waitFor(/Press Ctrl-C to stop/);
    const url = `ws://localhost:${ports.GATEWAY_PORT}/socket`;
    assert.match(banner, new RegExp(`Phoenix socket: ${url} `));
    assert.doesNotMatch(banner, /:4000\b/);
    assert.match(banner, new RegExp(`workers=tcp://127\\.0\\.0\\.1:${ports.BROKER_WORKER_PORT} ` +
      `gateways=tcp://127\\.0\\.0\\.1:${ports.BROKER_GATEWAY_PORT} ` +
      `streams_in=tcp://127\\.0\\.0\\.1:${ports.STREAM_IN_PORT} ` +
      `streams_out=tcp://127\\.0\\.0\\.1:${ports.STREAM_OUT_PORT}`));
    const socket = connect(url);
    try {
      const { channel } = await join(socket);
      const r = await call(channel, { service: 'user_service', request_type: 'get_user',
        request_id: 'mr1', args: { user_id: '1' } });
      assert.equal(r.success, true);
      assert.equal(r.result.name, 'Alice');
    } finally {
      socket.disconnect();
    }
    // CURVE is on: the operator key the banner names reads the broker's status; no key, no answer.
    const keys = path.join(BIN, '..', 'keys');
    const status = (env) => new Promise((resolve) => execFile(path.join(BIN, 'genapi-ctl'),
      ['status', '--broker', `tcp://127.0.0.1:${ports.BROKER_GATEWAY_PORT}`],
      { env: { ...process.env, ...env }, timeout: 15000 },
      (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr })));
    assert.match(banner, /GENAPI_CURVE_SECRET_FILE=\S+\/peers\/operator/);
    assert.match(banner, /GENAPI_ADMIN_TOKEN=\$\(cat \S+\/admin_token\)/);
    const fs = require('node:fs');
    const withKey = await status({ GENAPI_CURVE_SECRET_FILE: path.join(keys, 'peers', 'operator'),
      GENAPI_CURVE_BROKER_FILE: path.join(keys, 'broker'),
      GENAPI_ADMIN_TOKEN: fs.readFileSync(path.join(keys, 'admin_token'), 'utf8') });
    assert.equal(withKey.code, 0, withKey.stderr);
    // Eight services, data_service as three workers (node1..node3).
    const workers = JSON.parse(withKey.stdout).workers;
    assert.equal(workers.length, 11);
    assert.equal(workers.filter((w) => w.service === 'hooks_service').length, 1);
    assert.deepEqual(workers.filter((w) => w.service === 'data_service').map((w) => w.node).sort(),
      ['node1', 'node2', 'node3']);
    const without = await status({});
    assert.notEqual(without.code, 0);
    assert.match(without.stderr, /no answer from the broker/);
  } finally {
    run.child.kill('SIGINT');
    assert.equal(await run.exited, 0, run.out());
  }
  assert.match(run.out(), /stopped \(logs in /);
});

test('make run: a taken gateway port is named, with the variable that moves it', async () => {
  const ports = await freePorts();
  const blocker = net.createServer();
  await new Promise((r) => blocker.listen(Number(ports.GATEWAY_PORT), '0.0.0.0', r));
  try {
    const run = runDev(ports);
    const code = await run.exited;
    assert.notEqual(code, 0);
    assert.match(run.out(), /gateway failed to start/);
    assert.match(run.out(), new RegExp(`cannot listen on \\*:${ports.GATEWAY_PORT} .*set the option listen`));
    assert.match(run.out(), /choose another with make run GATEWAY_PORT=PORT/);
  } finally {
    blocker.close();
  }
});

test('make run: a taken broker port is named, with the variable that moves it', async () => {
  const ports = await freePorts();
  const blocker = net.createServer();
  await new Promise((r) => blocker.listen(Number(ports.BROKER_GATEWAY_PORT), '127.0.0.1', r));
  try {
    const run = runDev(ports);
    const code = await run.exited;
    assert.notEqual(code, 0);
    assert.match(run.out(), /broker failed to start/);
    assert.match(run.out(), /set the option gateway_endpoint/);
    assert.match(run.out(), /choose another with make run BROKER_GATEWAY_PORT=PORT/);
  } finally {
    blocker.close();
  }
});

test('make run: a taken metrics port is named, with the variable that moves it', async () => {
  const ports = await freePorts();
  const blocker = net.createServer();
  await new Promise((r) => blocker.listen(Number(ports.BROKER_METRICS_PORT), '127.0.0.1', r));
  try {
    const run = runDev(ports);
    const code = await run.exited;
    assert.notEqual(code, 0);
    assert.match(run.out(), /metrics_listen: cannot listen/);
    assert.match(run.out(), /choose another with make run BROKER_METRICS_PORT=PORT/);
  } finally {
    blocker.close();
  }
});
