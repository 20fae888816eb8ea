// SPDX-License-Identifier: MIT
// SIGHUP reloads what can change safely (docs/operations.md, "Reload"), with real processes:
// the gateway's rate limits, log level and JWT secret, the broker's admin token; every changed
// key is named in one log line as applied or needing a restart, a refused value is logged and
// the value in force kept.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFile } = require('node:child_process');
const WebSocket = require('ws');
const { BIN, Proc, startBroker, startWorker, startGateway, connect, join, call, eventually } = require('../support/stack');
const jwt = require('../support/jwt');

function writeJson(file, obj) {
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(obj, null, 2));
  fs.renameSync(`${file}.tmp`, file);
}

// Resolves once `proc`'s stderr, from offset `from`, has a line matching `re`.
function waitForLog(proc, re, from) {
  return eventually(() => re.test(proc.stderr.slice(from)), 10000, 20);
}

function handshakeStatus(url, token) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url}/websocket?vsn=2.0.0&token=${token}`);
    ws.on('open', () => { ws.terminate(); resolve(101); });
    ws.on('unexpected-response', (req, res) => { resolve(res.statusCode); req.destroy(); });
    ws.on('error', reject);
  });
}

function ctlStatus(broker, token) {
  return new Promise((resolve) => {
    execFile(path.join(BIN, 'genapi-ctl'), ['status', '--broker', broker.endpoints.gateways, '--token', token],
      { timeout: 10000 }, (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
  });
}

test('SIGHUP on the gateway applies rate_limits, log_level and jwt_secret, names what needs a restart, keeps a refused value', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'genapi-reload-'));
  const file = path.join(dir, 'gateway.json');
  const secretA = 'first-secret-0123456789';
  const secretB = 'second-secret-0123456789';
  writeJson(file, { auth: 'jwt', jwt_secret: secretA, allow_anonymous: true, log_level: 'info', rate_limits: {} });
  const procs = [];
  try {
    const broker = await startBroker();
    procs.push(broker);
    procs.push(await startWorker('genapi-test-worker', broker));
    const gateway = await startGateway(broker, { args: ['--config', file] });
    procs.push(gateway);
    const socket = connect(gateway.url);
    const { channel } = await join(socket);
    const echo = (i) => call(channel, { service: 'test_service', request_type: 'echo', request_id: `e${i}`, args: { value: i } });
    for (let i = 0; i < 3; i++) assert.equal((await echo(i)).success, true);
    const tokenA = jwt.sign({ sub: 'u1', exp: jwt.now() + 600 }, secretA);
    const tokenB = jwt.sign({ sub: 'u1', exp: jwt.now() + 600 }, secretB);
    assert.equal(await handshakeStatus(gateway.url, tokenA), 101);
    assert.equal(await handshakeStatus(gateway.url, tokenB), 401);

    writeJson(file, {
      auth: 'jwt', jwt_secret: secretB, allow_anonymous: true, log_level: 'debug', topics: 'api:*',
      rate_limits: { enabled: true, global_limits: [{ key: 'ip_address', max_requests: 2, window_ms: 60000 }] },
    });
    let from = gateway.stderr.length;
    gateway.child.kill('SIGHUP');
    await waitForLog(gateway, /reload: changed: topics, jwt_secret, log_level, rate_limits; applied: jwt_secret, log_level, rate_limits; need a restart \(not applied\): topics; refused: none/, from);
    assert.ok(!gateway.stderr.includes(secretB), 'the secret is never logged');
    // Rate limits in force: two more calls pass, the third is refused.
    assert.equal((await echo(10)).success, true);
    assert.equal((await echo(11)).success, true);
    assert.equal((await echo(12)).error, 'Rate limit exceeded');
    // The new secret only.
    assert.equal(await handshakeStatus(gateway.url, tokenA), 401);
    assert.equal(await handshakeStatus(gateway.url, tokenB), 101);
    // Debug lines now appear (a connection's).
    await waitForLog(gateway, /"level":"debug","prog":"genapi-gateway","pid":\d+,"msg":"connected conn=/, from);
    // topics needs a restart: still the old list.
    await assert.rejects(join(socket, 'api:other'));

    // A refused value: the limits in force stay.
    writeJson(file, {
      auth: 'jwt', jwt_secret: secretB, allow_anonymous: true, log_level: 'debug', topics: 'api:*',
      rate_limits: { enabled: true, global_limits: [{ key: 'ip_address', max_requests: -1, window_ms: 60000 }] },
    });
    from = gateway.stderr.length;
    gateway.child.kill('SIGHUP');
    await waitForLog(gateway, /reload: rate_limits: .*max_requests.*; the value in force is kept/, from);
    await waitForLog(gateway, /reload: changed: rate_limits; applied: none; need a restart \(not applied\): topics|reload: changed: topics, rate_limits; applied: none; need a restart \(not applied\): topics; refused: rate_limits/, from);
    assert.equal((await echo(13)).error, 'Rate limit exceeded');
    // A file that does not parse changes nothing.
    fs.writeFileSync(file, '{"log_level": ');
    from = gateway.stderr.length;
    gateway.child.kill('SIGHUP');
    await waitForLog(gateway, /reload: config file .*; nothing changed/, from);
    socket.disconnect();
  } finally {
    for (const p of procs.reverse()) await p.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('SIGHUP on the broker applies a new admin_token; a worker reloads its log level', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'genapi-reload-'));
  const file = path.join(dir, 'broker.json');
  const oldToken = 'old-admin-token-0123456789';
  const newToken = 'new-admin-token-0123456789';
  writeJson(file, { admin_token: oldToken, admin_actions: 'status', heartbeat_ms: 200 });
  const wfile = path.join(dir, 'worker.json');
  writeJson(wfile, { log_level: 'info' });
  const procs = [];
  // The harness puts its admin token in the environment, which would override the file's.
  const envToken = process.env.GENAPI_ADMIN_TOKEN;
  delete process.env.GENAPI_ADMIN_TOKEN;
  try {
    // Not the harness's broker: its --set admin_token would override the file's.
    const broker = new Proc('genapi-broker', ['--config', file,
      '--set', 'worker_endpoint=tcp://127.0.0.1:*', '--set', 'gateway_endpoint=tcp://127.0.0.1:*',
      '--set', 'stream_in_endpoint=tcp://127.0.0.1:*', '--set', 'stream_out_endpoint=tcp://127.0.0.1:*',
      '--set', 'metrics_listen=127.0.0.1:0', '--set', 'shutdown_timeout_ms=1500']);
    procs.push(broker);
    const { match } = await broker.waitForLine(/^READY broker workers=(\S+) gateways=(\S+)/);
    broker.endpoints = { workers: match[1], gateways: match[2] };
    const worker = await startWorker('genapi-test-worker', broker, { args: ['--config', wfile] });
    procs.push(worker);
    assert.equal((await ctlStatus(broker, oldToken)).code, 0);

    writeJson(file, { admin_token: newToken, admin_actions: 'status', heartbeat_ms: 300 });
    const from = broker.stderr.length;
    broker.child.kill('SIGHUP');
    await waitForLog(broker, /reload: changed: heartbeat_ms, admin_token; applied: admin_token; need a restart \(not applied\): heartbeat_ms; refused: none/, from);
    assert.ok(!broker.stderr.includes(newToken) && !broker.stderr.includes(oldToken), 'tokens are never logged');
    const refused = await ctlStatus(broker, oldToken);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stdout + refused.stderr, /admin token required/);
    assert.equal((await ctlStatus(broker, newToken)).code, 0);

    writeJson(wfile, { log_level: 'debug', threads: 3 });
    const wfrom = worker.stderr.length;
    worker.child.kill('SIGHUP');
    await waitForLog(worker, /reload: changed: threads, log_level; applied: log_level; need a restart \(not applied\): threads; refused: none/, wfrom);
  } finally {
    process.env.GENAPI_ADMIN_TOKEN = envToken;
    for (const p of procs.reverse()) await p.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
