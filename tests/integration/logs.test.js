// SPDX-License-Identifier: MIT
// Logs (docs/operations.md, "Logs"): with stderr not a terminal, every line a program writes
// is one JSON object with ts, level, prog, pid and msg; at log_level=debug a call's request_id
// appears, as its own field, in the lines of the gateway, the broker and the worker; no token
// or secret is ever logged.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { startBroker, startWorker, startGateway, connect, join, call, eventually } = require('../support/stack');
const jwt = require('../support/jwt');

function parseLines(name, text) {
  const lines = text.split('\n').filter((l) => l !== '');
  assert.ok(lines.length > 0, `${name} logged nothing`);
  return lines.map((l) => {
    let o;
    assert.doesNotThrow(() => { o = JSON.parse(l); }, `${name}: not JSON: ${l}`);
    assert.equal(typeof o.ts, 'string', l);
    assert.match(o.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(['error', 'warn', 'notice', 'info', 'debug'].includes(o.level), l);
    assert.equal(typeof o.msg, 'string', l);
    assert.equal(typeof o.pid, 'number', l);
    assert.equal(o.prog, name === 'genapi-test-worker' ? 'test_service' : name, l);
    return o;
  });
}

test('every stderr line is JSON; a request id is in the debug lines of gateway, broker and worker; no secret logged', async () => {
  const secret = 'log-test-jwt-secret-0123456789';
  const procs = [];
  try {
    const broker = await startBroker({ args: ['--set', 'log_level=debug', '--set', 'push_token=push-secret-9876'] });
    procs.push(broker);
    const worker = await startWorker('genapi-test-worker', broker, { args: ['--set', 'log_level=debug', '--set', 'push_token=push-secret-9876'] });
    procs.push(worker);
    const gateway = await startGateway(broker, {
      args: ['--set', 'log_level=debug', '--set', 'auth=jwt', '--set', `jwt_secret=${secret}`],
    });
    procs.push(gateway);
    const token = jwt.sign({ sub: 'log-user', exp: jwt.now() + 600 }, secret);
    const socket = connect(gateway.url, { token });
    const { channel } = await join(socket);
    const r = await call(channel, { service: 'test_service', request_type: 'echo', request_id: 'trace-me-42', args: { value: 'x' } });
    assert.equal(r.success, true);
    // A refused token is logged with its reason, never the token.
    const bad = jwt.sign({ sub: 'x', exp: jwt.now() + 600 }, 'another-secret-0123456789');
    const badSocket = connect(gateway.url, { token: bad });
    await eventually(() => /connection refused/.test(gateway.stderr), 5000, 20);
    badSocket.disconnect();
    socket.disconnect();
    for (const p of procs.slice().reverse()) await p.stop();

    for (const p of procs) {
      const lines = parseLines(p.name, p.stderr);
      const about = lines.filter((o) => o.request_id === 'trace-me-42');
      assert.ok(about.length >= 1, `${p.name}: no line with request_id trace-me-42\n${p.stderr}`);
      assert.ok(about.every((o) => o.level === 'debug' && o.msg.includes('trace-me-42')));
      for (const s of [secret, token, bad, 'push-secret-9876']) {
        assert.ok(!p.stderr.includes(s), `${p.name} logged a secret`);
      }
    }
  } finally {
    for (const p of procs) if (!p.exited) p.kill('SIGKILL');
  }
});
