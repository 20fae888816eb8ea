// SPDX-License-Identifier: MIT
// Connection identity: bad, expired, unsigned, wrong-algorithm, unsigned-claims and future
// tokens are refused at the handshake; a good token's sub, roles and device reach the worker;
// auth=service lets a worker function decide.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const WebSocket = require('ws');
const { startStack, connect, join, call } = require('../support/stack');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { sign, now, keyPair } = require('../support/jwt');

const SECRET = 'test-secret-for-the-identity-tests';

// Opens a raw WebSocket with `token`; resolves 'open' or 'refused'.
function attempt(url, token) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${url}/websocket?vsn=2.0.0&token=${encodeURIComponent(token)}`);
    ws.on('open', () => { ws.close(); resolve('open'); });
    ws.on('error', () => resolve('refused'));
    ws.on('unexpected-response', () => resolve('refused'));
  });
}

test('jwt: bad tokens are refused at the handshake, a good one sets the identity', async () => {
  const stack = await startStack({
    workers: ['genapi-test-worker'],
    gatewayArgs: ['--set', 'auth=jwt', '--set', `jwt_secret=${SECRET}`],
  });
  try {
    const good = sign({ sub: 'u1', roles: ['editor'], device_id: 'phone-9', exp: now() + 60 }, SECRET);
    assert.equal(await attempt(stack.url, good), 'open');
    const bad = {
      garbage: 'abc.def.ghi',
      expired: sign({ sub: 'u1', exp: now() - 120 }, SECRET),
      unsigned: sign({ sub: 'u1', exp: now() + 60 }, SECRET, { alg: 'none' }),
      wrong_algorithm: sign({ sub: 'u1', exp: now() + 60 }, SECRET, { alg: 'HS512' }),
      wrong_key: sign({ sub: 'u1', exp: now() + 60 }, 'another-secret-of-enough-length'),
      no_exp: sign({ sub: 'u1' }, SECRET),
      not_yet_valid: sign({ sub: 'u1', exp: now() + 600, nbf: now() + 300 }, SECRET),
      no_sub: sign({ exp: now() + 60 }, SECRET),
    };
    for (const [name, t] of Object.entries(bad)) {
      assert.equal(await attempt(stack.url, t), 'refused', name);
    }
    // Without a token (allow_anonymous is off) the handshake is refused too.
    assert.equal(await attempt(stack.url, ''), 'refused');

    const { channel } = await join(connect(stack.url, { token: good }, stack));
    const r = await call(channel, { request_id: 'w', service: 'test_service', request_type: 'whoami', user_id: 'spoof', roles: ['admin'] });
    assert.deepEqual(r.result, { user_id: 'u1', roles: ['editor'], device_id: 'phone-9' });
    // The device_id connect param, sent after a long token (the phoenix client puts vsn last).
    const plain = sign({ sub: 'u2', exp: now() + 60, team: 'x'.repeat(120) }, SECRET); // over 160 bytes
    const { channel: other } = await join(connect(stack.url, { token: plain, device_id: 'tab-3' }, stack));
    const r2 = await call(other, { request_id: 'w2', service: 'test_service', request_type: 'whoami' });
    assert.deepEqual(r2.result, { user_id: 'u2', roles: [], device_id: 'tab-3' });
  } finally {
    await stack.stop();
  }
});

// RS256 and ES256 with a public key file: the pinned algorithm only, the right key only, and
// no algorithm confusion (an HS256 token whose secret is the public key itself).
for (const [alg, type, otherAlg, otherType] of [['RS256', 'rsa', 'ES256', 'ec'], ['ES256', 'ec', 'RS256', 'rsa']]) {
  test(`jwt ${alg}: tokens verified with a public key; other keys and algorithms refused`, async () => {
    const keys = keyPair(type);
    const stranger = keyPair(type);
    const other = keyPair(otherType);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'genapi-jwt-'));
    const pemFile = path.join(dir, 'public.pem');
    fs.writeFileSync(pemFile, keys.publicPem);
    const stack = await startStack({
      workers: ['genapi-test-worker'],
      gatewayArgs: ['--set', 'auth=jwt', '--set', `jwt_alg=${alg}`, '--set', `jwt_public_key_file=${pemFile}`],
    });
    try {
      const claims = { sub: 'k1', roles: ['viewer'], exp: now() + 60 };
      const good = sign(claims, keys.privateKey, { alg });
      assert.equal(await attempt(stack.url, good), 'open');
      const bad = {
        another_key: sign(claims, stranger.privateKey, { alg }),
        another_algorithm: sign(claims, other.privateKey, { alg: otherAlg }),
        hs256_with_the_public_key_as_secret: sign(claims, keys.publicPem, { alg: 'HS256' }),
        unsigned: sign(claims, null, { alg: 'none' }),
        expired: sign({ ...claims, exp: now() - 120 }, keys.privateKey, { alg }),
      };
      for (const [name, t] of Object.entries(bad)) {
        assert.equal(await attempt(stack.url, t), 'refused', name);
      }
      const { channel } = await join(connect(stack.url, { token: good }, stack));
      const r = await call(channel, { request_id: 'w', service: 'test_service', request_type: 'whoami' });
      assert.deepEqual(r.result, { user_id: 'k1', roles: ['viewer'], device_id: null });
    } finally {
      await stack.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('auth=service: a worker function decides each connection', async () => {
  const stack = await startStack({
    workers: ['genapi-test-worker'],
    gatewayArgs: ['--set', 'auth=service', '--set', 'auth_service=test_service.authenticate'],
  });
  try {
    const { channel } = await join(connect(stack.url, { token: 'user:alice:admin,viewer', device_id: 'tab-1' }, stack));
    const r = await call(channel, { request_id: 'w', service: 'test_service', request_type: 'whoami' });
    assert.deepEqual(r.result, { user_id: 'alice', roles: ['admin', 'viewer'], device_id: 'tab-1' });

    const refused = await new Promise((resolve) => {
      const ws = new WebSocket(`${stack.url}/websocket?vsn=2.0.0&token=nope`);
      ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
      ws.on('error', () => {});
    });
    assert.deepEqual(refused, { code: 1008, reason: 'authentication refused' });
  } finally {
    await stack.stop();
  }
});

// The HTTP status a handshake gets with `token` (101 when the WebSocket opens).
function status(url, token) {
  return new Promise((resolve, reject) => {
    const q = token === null ? '' : `&token=${encodeURIComponent(token)}`;
    const ws = new WebSocket(`${url}/websocket?vsn=2.0.0${q}`);
    ws.on('open', () => { ws.close(); resolve(101); });
    ws.on('unexpected-response', (req, res) => { res.resume(); resolve(res.statusCode); });
    ws.on('error', reject);
  });
}

test('refusals are throttled per address, failing attempts only: valid and anonymous ones pass', async () => {
  const stack = await startStack({
    workers: [],
    gatewayArgs: ['--set', 'auth=jwt', '--set', `jwt_secret=${SECRET}`, '--set', 'allow_anonymous=true'],
  });
  try {
    const good = sign({ sub: 'u1', exp: now() + 60 }, SECRET);
    const codes = [];
    for (let i = 0; i < 12; i++) codes.push(await status(stack.url, 'bad.token.here'));
    // 401 until the address is throttled (10 refusals in 10 s), 429 after.
    assert.deepEqual(codes, [...Array(10).fill(401), 429, 429]);
    assert.equal(await status(stack.url, good), 101);
    assert.equal(await status(stack.url, null), 101);
    assert.equal(await status(stack.url, sign({ sub: 'u1', exp: now() - 120 }, SECRET)), 429);
    assert.equal(await status(stack.url, good), 101);
    // One log line for the throttled address in this window, not one per refusal.
    const lines = stack.gateway.stderr.split('\n').filter((l) => /refused handshakes from ip=127\.0\.0\.1/.test(l));
    assert.equal(lines.length, 1, stack.gateway.stderr);
  } finally {
    await stack.stop();
  }
});
