// SPDX-License-Identifier: MIT
// genapi-call against a live stack (docs/operations.md, "genapi-call"): a sync call printed as
// one JSON line (exit 0); an error answer (exit 1, the message on stderr); an unknown function;
// a stream, one line per chunk then its end; an async call's result; a version; a JWT and a
// device id reaching the handler; a `none` call with --no-wait; a refused handshake, a refused
// join and an unreachable gateway (exit 3).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const net = require('node:net');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { BIN, startStack, eventually } = require('../support/stack');

const SECRET = 'genapi-call-test-secret-0123456789abcdef';

function run(prog, args) {
  return new Promise((resolve) => execFile(path.join(BIN, prog), args, { timeout: 20000 },
    (err, stdout, stderr) => resolve({
      code: err ? err.code : 0, stdout, stderr,
      lines: prog === 'genapi-call' ? stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l)) : [],
    })));
}

test('genapi-call: sync, error, stream, async, version, identity, none', async () => {
  const stack = await startStack({
    workers: ['user_service', 'versioned_user_service', 'genapi-test-worker'],
    gatewayArgs: ['--set', 'auth=jwt', '--set', `jwt_secret=${SECRET}`, '--set', 'allow_anonymous=true'],
  });
  try {
    const url = stack.url; // ws://127.0.0.1:PORT/socket: completed to /socket/websocket
    const call = (...args) => run('genapi-call', ['--url', url, ...args]);

    const ok = await call('user_service', 'get_user', '{"user_id": "1"}', '--request-id', 'c1');
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.lines.length, 1);
    assert.equal(ok.lines[0].request_id, 'c1');
    assert.equal(ok.lines[0].success, true);
    assert.equal(ok.lines[0].result.name, 'Alice');

    const err = await call('user_service', 'get_user', '{"user_id": "nope"}');
    assert.equal(err.code, 1);
    assert.equal(err.lines.length, 1);
    assert.equal(err.lines[0].success, false);
    assert.match(err.stderr, /^genapi-call: .+/);
    assert.ok(err.stderr.includes(err.lines[0].error));

    const unknown = await call('user_service', 'nope');
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /Unknown function/);
    const badArgs = await call('user_service', 'get_user', '{"user_id": 7}');
    assert.equal(badArgs.code, 1);

    const stream = await call('test_service', 'count', '{"n": 3, "interval_ms": 50}', '--url', `${url}/websocket`);
    assert.equal(stream.code, 0, stream.stderr);
    assert.deepEqual(stream.lines.map((l) => l.kind), ['chunk', 'chunk', 'chunk', 'end']);
    assert.deepEqual(stream.lines.slice(0, 3).map((l) => l.result.i), [1, 2, 3]);
    const verbose = await call('test_service', 'count', '{"n": 1}', '--verbose');
    assert.deepEqual(verbose.lines.map((l) => l.kind), ['ack', 'chunk', 'end']);

    const async = await call('test_service', 'slow_async', '{"ms": 100}');
    assert.equal(async.code, 0, async.stderr);
    assert.deepEqual(async.lines.map((l) => [l.kind, l.async]), [['result', false]]);

    const v2 = await call('versioned_user_service', 'get_user', '{"id": "1", "fields": ["name"]}', '--version', '2.0.0');
    assert.equal(v2.code, 0, v2.stderr);
    const v1 = await call('versioned_user_service', 'get_user', '{"id": "1"}', '--version', '1.0.0');
    assert.notDeepEqual(v1.lines[0].result, v2.lines[0].result);

    // Identity: a token minted by genapi-ctl, and a device id, reach a request_info handler.
    const token = (await run('genapi-ctl', ['token', '--sub', 'alice', '--roles', 'viewer', '--secret', SECRET])).stdout.trim();
    const who = await call('test_service', 'whoami', '--token', token, '--device-id', 'tab-9');
    assert.equal(who.code, 0, who.stderr);
    assert.equal(who.lines[0].result.user_id, 'alice');
    assert.deepEqual(who.lines[0].result.roles, ['viewer']);
    assert.equal(who.lines[0].result.device_id, 'tab-9');
    const anon = await call('test_service', 'whoami');
    assert.equal(anon.code, 1); // any_authenticated
    assert.match(anon.stderr, /Permission denied/);

    // none: nothing ever comes back; --no-wait pushes and leaves.
    const worker = stack.workers[2];
    const fire = await call('test_service', 'fire', '{"value": "from-shell"}', '--no-wait');
    assert.equal(fire.code, 0, fire.stderr);
    assert.deepEqual(fire.lines, []);
    await eventually(() => worker.lines.includes('FIRED from-shell'), 10000);

    // Failures to get an answer: exit 3, said on stderr.
    const badToken = await call('user_service', 'list_users', '--token', 'not-a-jwt');
    assert.equal(badToken.code, 3);
    assert.match(badToken.stderr, /refused the handshake: HTTP 401/);
    const badTopic = await call('user_service', 'list_users', '--topic', 'nope:x');
    assert.equal(badTopic.code, 3);
    assert.match(badTopic.stderr, /join refused: unmatched topic/);
    const port = await new Promise((resolve) => {
      const srv = net.createServer();
      srv.listen(0, '127.0.0.1', () => { const p = srv.address().port; srv.close(() => resolve(p)); });
    });
    const nobody = await run('genapi-call', ['--url', `ws://127.0.0.1:${port}/socket`, 'user_service', 'list_users']);
    assert.equal(nobody.code, 3);
    assert.match(nobody.stderr, /cannot connect/);
    const timeout = await call('test_service', 'sleep', '{"ms": 3000}', '--timeout-ms', '300');
    assert.equal(timeout.code, 3);
    assert.match(timeout.stderr, /no answer within 300 ms/);

    // Usage errors: exit 2.
    assert.equal((await run('genapi-call', ['user_service'])).code, 2);
    assert.equal((await run('genapi-call', ['user_service', 'get_user', '[1]'])).code, 2);
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    await stack.stop();
  }
});
