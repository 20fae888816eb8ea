// SPDX-License-Identifier: MIT
// A worker killed mid-request: the client gets "Worker lost" within the liveness window (3
// heartbeats of 200 ms), never a hang; a new worker then serves again.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { startStack, startWorker, connect, join, call, eventually } = require('../support/stack');

test('a worker killed mid-request is answered with Worker lost, then a new worker serves', async () => {
  const stack = await startStack({ workers: ['genapi-test-worker'] });
  try {
    const { channel } = await join(connect(stack.url, {}, stack));
    const worker = stack.workers[0];
    const pending = call(channel, { service: 'test_service', request_type: 'sleep', request_id: 's1', args: { ms: 20000 } }, 25000);
    await worker.waitForLine(/^HANDLER sleep start/);
    const killedAt = Date.now();
    await worker.kill('SIGKILL');
    const r = await pending;
    const waited = Date.now() - killedAt;
    assert.equal(r.success, false);
    assert.equal(r.kind, 'error');
    assert.equal(r.error, 'Worker lost');
    assert.equal(r.can_retry, true);
    assert.ok(waited < 2000, `answered after ${waited} ms`);

    const fresh = await startWorker('genapi-test-worker', stack.broker);
    stack.procs.push(fresh);
    const echoed = await eventually(async () => {
      const e = await call(channel, { service: 'test_service', request_type: 'echo', request_id: `e${Date.now()}`, args: { value: 42 } });
      return e.success && e;
    }, 5000);
    assert.deepEqual(echoed.result, { value: 42 });
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    await stack.stop();
  }
});
