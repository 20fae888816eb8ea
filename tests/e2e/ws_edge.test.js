// SPDX-License-Identifier: MIT
// The WebSocket edge (docs/security.md, "The WebSocket edge"): TLS on the gateway's listener
// with a test certificate made here (the official phoenix client over wss://, TLS 1.2 and up
// only, no plain ws on the TLS port), allowed_origins on the handshake (403 for any other
// Origin), and the TLS and origin options refused at start when incomplete, unreadable or
// malformed.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, execFileSync } = require('node:child_process');
const WebSocket = require('ws');
const { Socket } = require('phoenix');
const { Proc, startStack, join, call } = require('../support/stack');

// A self-signed certificate for localhost and 127.0.0.1, valid one day, in a fresh temp dir.
function makeCert() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'genapi-tls-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    '-keyout', key, '-out', cert], { stdio: 'ignore' });
  // An OpenSSL configuration that allows TLS 1.0 and up at security level 0, so that the
  // TLS 1.1 refusal below is the gateway's own setting, not the system's openssl.cnf (Debian's
  // sets MinProtocol TLSv1.2) nor OpenSSL's default security level.
  const conf = path.join(dir, 'openssl.cnf');
  fs.writeFileSync(conf, ['openssl_conf = default_conf', '[default_conf]', 'ssl_conf = ssl_sect',
    '[ssl_sect]', 'system_default = system_default_sect', '[system_default_sect]',
    'MinProtocol = TLSv1', 'CipherString = DEFAULT@SECLEVEL=0', ''].join('\n'));
  return { dir, cert, key, conf };
}

// `openssl s_client` with `version` ("-tls1_1", "-tls1_2") against 127.0.0.1:port; resolves
// with the protocol it negotiated, or null when the handshake failed.
function sClient(port, version, conf) {
  return new Promise((resolve) => {
    const child = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, version,
      '-cipher', 'DEFAULT:@SECLEVEL=0', '-brief'], {
      env: { ...process.env, OPENSSL_CONF: conf }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.stdin.end(); // EOF: s_client quits after the handshake
    const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
    child.on('exit', () => {
      clearTimeout(timer);
      const m = out.match(/Protocol version: (\S+)/);
      resolve(m ? m[1] : null);
    });
  });
}

// The HTTP status of a handshake (101 when it opens), and the refusal's body.
function handshake(url, options = {}) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${url}/websocket?vsn=2.0.0`, options);
    ws.on('open', () => { ws.terminate(); resolve({ status: 101 }); });
    ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    ws.on('error', (e) => resolve({ error: e }));
  });
}

test('TLS: the phoenix client calls over wss://; plain ws and TLS 1.1 are refused', async () => {
  const c = makeCert();
  // The gateway inherits OPENSSL_CONF: TLS 1.0 and up allowed by it.
  const saved = process.env.OPENSSL_CONF;
  process.env.OPENSSL_CONF = c.conf;
  let stack;
  try {
    stack = await startStack({ workers: ['user_service'],
      gatewayArgs: ['--set', `tls_cert_file=${c.cert}`, '--set', `tls_key_file=${c.key}`] });
  } finally {
    if (saved === undefined) delete process.env.OPENSSL_CONF; else process.env.OPENSSL_CONF = saved;
  }
  let socket;
  try {
    assert.match(stack.url, /^wss:\/\/127\.0\.0\.1:\d+\/socket$/);
    const ca = fs.readFileSync(c.cert);
    // The certificate is verified for real: the test CA is passed to `ws`.
    class TestCaWebSocket extends WebSocket {
      constructor(url, protocols) { super(url, protocols, { ca }); }
    }
    socket = new Socket(stack.url, { transport: TestCaWebSocket, params: {}, timeout: 10000,
      reconnectAfterMs: () => 200, rejoinAfterMs: () => 200 });
    socket.connect();
    const { channel } = await join(socket);
    const r = await call(channel, { request_id: 'tls1', service: 'user_service', request_type: 'get_user', args: { user_id: '1' } });
    assert.equal(r.success, true);
    assert.equal(r.request_id, 'tls1');
    assert.equal(r.result.id, '1');

    // Without the CA the certificate is not trusted (it is self-signed): nothing falls back.
    const untrusted = await handshake(stack.url);
    assert.ok(untrusted.error, 'an unverified certificate must not be accepted by default');
    // Plain ws:// on the TLS port: no WebSocket.
    const plain = await handshake(stack.url.replace(/^wss:/, 'ws:'));
    assert.notEqual(plain.status, 101);

    const port = Number(stack.url.match(/:(\d+)\/socket$/)[1]);
    assert.equal(await sClient(port, '-tls1_1', c.conf), null, 'TLS 1.1 must be refused');
    assert.equal(await sClient(port, '-tls1_2', c.conf), 'TLSv1.2');
    assert.equal(await sClient(port, '-tls1_3', c.conf), 'TLSv1.3');
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    if (socket) socket.disconnect();
    await stack.stop();
    fs.rmSync(c.dir, { recursive: true, force: true });
  }
});

test('allowed_origins: another Origin gets 403; listed ones and non-browser clients connect', async () => {
  const stack = await startStack({ workers: [],
    gatewayArgs: ['--set', 'allowed_origins=https://app.example.com, http://localhost:8080'] });
  try {
    const evil = await handshake(stack.url, { origin: 'https://evil.example.com' });
    assert.equal(evil.status, 403);
    assert.match(evil.body, /origin not allowed/);
    // Exact match only: no prefix, suffix, scheme or port variants.
    for (const origin of ['https://app.example.com.evil.com', 'http://app.example.com', 'https://app.example.com:8443', 'null']) {
      assert.equal((await handshake(stack.url, { origin })).status, 403, origin);
    }
    assert.equal((await handshake(stack.url, { origin: 'https://app.example.com' })).status, 101);
    assert.equal((await handshake(stack.url, { origin: 'http://localhost:8080' })).status, 101);
    // No Origin header: not a browser, so not a cross-site request (see docs/security.md).
    assert.equal((await handshake(stack.url)).status, 101);
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    await stack.stop();
  }
});

// Runs the gateway with `args` and resolves with {code, stderr} once it exits.
function gatewayExit(args) {
  const p = new Proc('genapi-gateway', ['--set', 'listen=127.0.0.1:0', '--set', 'broker=tcp://127.0.0.1:1', ...args]);
  return p.exitPromise.then((r) => ({ code: r.code, stderr: p.stderr }));
}

test('TLS and origin options: incomplete, unreadable or malformed settings are refused at start', async () => {
  const c = makeCert();
  try {
    let r = await gatewayExit(['--set', `tls_cert_file=${c.cert}`]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /tls_key_file: required with tls_cert_file/);
    r = await gatewayExit(['--set', `tls_key_file=${c.key}`]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /tls_cert_file: required with tls_key_file/);
    r = await gatewayExit(['--set', `tls_cert_file=${c.dir}/missing.pem`, '--set', `tls_key_file=${c.key}`]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /tls_cert_file: cannot read ".*missing\.pem"/);
    r = await gatewayExit(['--set', `tls_cert_file=${c.cert}`, '--set', `tls_key_file=${c.dir}/nokey.pem`]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /tls_key_file: cannot read ".*nokey\.pem"/);
    // Readable but not a certificate and key that belong together: refused, never plain ws.
    r = await gatewayExit(['--set', `tls_cert_file=${c.key}`, '--set', `tls_key_file=${c.cert}`]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /tls_cert_file/);
    r = await gatewayExit(['--set', 'allowed_origins=https://app.example.com/']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /allowed_origins: .*scheme:\/\/host\[:port\]/);
  } finally {
    fs.rmSync(c.dir, { recursive: true, force: true });
  }
});
