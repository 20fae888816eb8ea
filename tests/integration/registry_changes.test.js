// SPDX-License-Identifier: MIT
// Registry changes as a client sees them (docs/protocol.md, "Registry updates"): a worker that
// dies keeps its functions (Service unavailable, can_retry) for its restart; a worker that comes
// back without a function removes it everywhere, so the gateway refuses it as Unknown function
// without acknowledging it first; and right after a broker restart, before the workers have
// registered again, a known function is Service temporarily unavailable, not unknown.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { startStack, startBroker, startWorker, connect, join, call, eventually } = require('../support/stack');

test('a function a restarted worker no longer has becomes Unknown function at the gateway', async () => {
  const stack = await startStack({ workers: ['genapi-test-worker'] });
  try {
    const { channel } = await join(connect(stack.url, {}, stack));
    const failed = await call(channel, { service: 'test_service', request_type: 'fail', request_id: 'f1' });
    assert.equal(failed.error, 'boom');

    await stack.workers[0].kill('SIGKILL');
    // Dead, not withdrawn: the function stays known and is retryable.
    const dead = await eventually(async () => {
      const r = await call(channel, { service: 'test_service', request_type: 'fail', request_id: `d${Date.now()}` });
      return r.error === 'Service unavailable' && r;
    }, 10000);
    assert.equal(dead.can_retry, true);

    // The new version of the worker (same node name) has neither fail nor slow_async.
    const fresh = await startWorker('genapi-test-worker', stack.broker, { args: ['--drop', 'fail,slow_async'] });
    stack.procs.push(fresh);
    const gone = await eventually(async () => {
      const r = await call(channel, { service: 'test_service', request_type: 'fail', request_id: `g${Date.now()}` });
      return r.error === 'Unknown function' && r;
    }, 10000);
    assert.equal(gone.can_retry, false);
    assert.equal(gone.kind, 'error');
    // The gateway itself knows: an async call is refused outright, never acknowledged first.
    const asyncGone = await call(channel, { service: 'test_service', request_type: 'slow_async', request_id: 'a1', args: { ms: 1 } });
    assert.deepEqual([asyncGone.kind, asyncGone.success, asyncGone.error, asyncGone.async],
      ['error', false, 'Unknown function', false]);
    const echoed = await call(channel, { service: 'test_service', request_type: 'echo', request_id: 'e1', args: { value: 5 } });
    assert.deepEqual(echoed.result, { value: 5 });
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    await stack.stop();
  }
});

test('right after a broker restart a known function is temporarily unavailable, not unknown', async () => {
  const stack = await startStack({ workers: ['genapi-test-worker'] });
  let broker2 = null;
  const worker = stack.workers[0];
  let paused = false;
  try {
    const { channel } = await join(connect(stack.url, {}, stack));
    const echo = (id) => call(channel, { service: 'test_service', request_type: 'echo', request_id: id, args: { value: 1 } });
    assert.equal((await echo('before')).success, true);

    // The worker cannot register again for now: the window is all the broker has.
    worker.child.kill('SIGSTOP');
    paused = true;
    const endpoints = stack.broker.endpoints;
    await stack.broker.stop();
    stack.procs.splice(stack.procs.indexOf(stack.broker), 1);
    // A 2 s heartbeat makes the re-registration window (3 heartbeats) 6 s.
    broker2 = await startBroker({ endpoints, heartbeatMs: 2000 });
    stack.procs.unshift(broker2);

    // Until the gateway reaches the new broker it says Service unavailable; then, in the window:
    const warming = await eventually(async () => {
      const r = await echo(`w${Date.now()}`);
      return r.error !== 'Service unavailable' && r;
    }, 5000);
    assert.deepEqual([warming.success, warming.error, warming.can_retry],
      [false, 'Service temporarily unavailable', true]);
    // A function nobody ever had is still unknown.
    const never = await call(channel, { service: 'test_service', request_type: 'nope', request_id: 'n1' });
    assert.deepEqual([never.error, never.can_retry], ['Unknown function', false]);

    worker.child.kill('SIGCONT');
    paused = false;
    const back = await eventually(async () => {
      const r = await echo(`b${Date.now()}`);
      return r.success && r;
    }, 15000);
    assert.deepEqual(back.result, { value: 1 });
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    if (paused) worker.child.kill('SIGCONT');
    await stack.stop();
  }
});
