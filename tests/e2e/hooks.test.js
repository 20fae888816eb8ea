// SPDX-License-Identifier: MIT
// Hooks (docs/protocol.md, "Hooks") through real processes: genapi-test-worker's hooked
// functions run test_service.hook_before (extra args {"x": 7}) and test_service.hook_after with
// a 500 ms hook_timeout; the call's `mode` argument tells the hooks what to do.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { startStack, connect, join, call, waitForPushes, eventually } = require('../support/stack');
const { sign, now } = require('../support/jwt');

const SECRET = 'test-secret-for-the-hook-tests';
const GATEWAY = ['--set', 'auth=jwt', '--set', `jwt_secret=${SECRET}`, '--set', 'allow_anonymous=true'];

async function channelOf(stack, sub) {
  const params = sub ? { token: sign({ sub, roles: ['viewer'], exp: now() + 600 }, SECRET) } : {};
  return (await join(connect(stack.url, params, stack))).channel;
}

let seq = 0;
const ask = (ch, request_type, args) => call(ch, { request_id: `${request_type}-${++seq}`, service: 'test_service', request_type, args });
const of = (id) => (pushes) => pushes.filter((p) => p.request_id === id);

test('before and after hooks: modify, refuse, invalid replacement, timeouts and failures', async () => {
  const stack = await startStack({ workers: ['genapi-test-worker'], gatewayArgs: GATEWAY });
  try {
    const ch = await channelOf(stack, 'user_42');
    // pass: the handler's result, wrapped by the after hook.
    let r = await ask(ch, 'hooked', { value: 1 });
    assert.equal(r.success, true, JSON.stringify(r));
    assert.deepEqual(r.result, { wrapped: { value: 1, mode: 'pass', tag: null }, hook: 'after' });

    // modify: the before hook's args reach the handler; it saw the whole request (user id and
    // ip although hooked has no request_info), the function's config and its extra args.
    r = await ask(ch, 'hooked', { value: 'v', mode: 'modify' });
    assert.equal(r.success, true, JSON.stringify(r));
    assert.deepEqual(r.result.wrapped, {
      value: 'v', mode: 'modify', tag: 'test_service.hooked x=7 user=user_42 ip=set config=hooked hook=before',
    });

    // refuse: the hook's own error is the client's error; the handler never ran.
    r = await ask(ch, 'hooked', { value: 1, mode: 'refuse' });
    assert.deepEqual([r.success, r.error, r.kind], [false, 'refused by the before hook', 'error']);
    // A replacement the declaration refuses: refused with the validation message.
    r = await ask(ch, 'hooked', { value: 1, mode: 'invalid' });
    assert.deepEqual([r.success, r.error], [false, 'Unknown argument: bogus']);
    // A before hook past hook_timeout, or answering an internal error: the call is refused.
    r = await ask(ch, 'hooked', { value: 1, mode: 'slow' });
    assert.deepEqual([r.success, r.error], [false, 'Hook timed out']);
    r = await ask(ch, 'hooked', { value: 1, mode: 'crash' });
    assert.deepEqual([r.success, r.error, r.can_retry], [false, 'Hook failed', false]);
    // Each of those before hooks ran once (stdout reaches the test asynchronously: wait for it).
    const ran = () => stack.workers[0].lines.filter((l) => / (refuse|invalid|slow|crash)$/.test(l) && l.startsWith('HOOK before')).length;
    await eventually(() => ran() === 4);
    assert.equal(ran(), 4);

    // An after hook that fails or is slow: the original result stands.
    r = await ask(ch, 'hooked', { value: 2, mode: 'after_fail' });
    assert.deepEqual([r.success, r.result], [true, { value: 2, mode: 'after_fail', tag: null }]);
    r = await ask(ch, 'hooked', { value: 3, mode: 'after_slow' });
    assert.deepEqual([r.success, r.result], [true, { value: 3, mode: 'after_slow', tag: null }]);

    // The gateway still answers normally afterwards (nothing left waiting).
    r = await ask(ch, 'hooked', { value: 4 });
    assert.deepEqual(r.result.wrapped.value, 4);
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    await stack.stop();
  }
});

test('async: the ack waits for the before hook; a refusal comes instead of the ack', async () => {
  const stack = await startStack({ workers: ['genapi-test-worker'], gatewayArgs: GATEWAY });
  try {
    const ch = await channelOf(stack, null);
    const pushes = [];
    ch.on('api', (p) => pushes.push(p));
    let r = await ask(ch, 'hooked_async', { value: 1, mode: 'refuse' });
    assert.deepEqual([r.success, r.kind, r.error], [false, 'error', 'refused by the before hook']);
    r = await ask(ch, 'hooked_async', { value: 1, mode: 'slow' });
    assert.deepEqual([r.success, r.kind, r.error], [false, 'error', 'Hook timed out']);

    // Allowed: the ack, then the result through the after hook as a push.
    r = await ask(ch, 'hooked_async', { value: 5, mode: 'modify' });
    assert.deepEqual([r.success, r.kind], [true, 'ack']);
    const id = r.request_id;
    const got = of(id)(await waitForPushes(ch, (p) => of(id)(p).some((x) => x.kind === 'result'), 10000));
    const result = got.find((x) => x.kind === 'result');
    assert.equal(result.result.hook, 'after');
    assert.equal(result.result.wrapped.mode, 'modify');

    // A stream's before hook: refused before any ack, or the stream runs.
    r = await ask(ch, 'hooked_stream', { mode: 'refuse' });
    assert.deepEqual([r.success, r.kind, r.error], [false, 'error', 'refused by the before hook']);
    r = await ask(ch, 'hooked_stream', { mode: 'pass' });
    assert.deepEqual([r.success, r.kind], [true, 'ack']);
    const sid = r.request_id;
    const chunks = of(sid)(await waitForPushes(ch, (p) => of(sid)(p).some((x) => x.kind === 'last'), 10000));
    assert.deepEqual(chunks.filter((x) => x.kind !== 'ack').map((x) => [x.kind, x.result]), [['last', 'only']]);
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    await stack.stop();
  }
});

test('a before hook whose worker dies refuses the call', async () => {
  const stack = await startStack({ workers: ['genapi-test-worker'], gatewayArgs: GATEWAY });
  try {
    const ch = await channelOf(stack, null);
    const worker = stack.workers[0];
    worker.killedOnPurpose = true; // the hook makes it exit with status 3
    const r = await ask(ch, 'hooked', { value: 1, mode: 'exit' });
    // The broker notices the lost worker within its liveness window, which may be longer than
    // the 500 ms hook_timeout: either way the call is refused, never run.
    assert.equal(r.success, false);
    assert.ok(['Hook failed', 'Hook timed out'].includes(r.error), r.error);
    assert.equal((await worker.exitPromise).code, 3);
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    await stack.stop();
  }
});
