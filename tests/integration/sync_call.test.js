// SPDX-License-Identifier: MIT
// Real broker, gateway and user_service processes: a sync call, and 200 concurrent calls over
// four sockets, each answered exactly once with the right result.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { startStack, connect, join, call } = require('../support/stack');

test('sync call through real processes', async () => {
  const stack = await startStack({ workers: ['user_service'] });
  try {
    const { channel } = await join(connect(stack.url, {}, stack));
    const r = await call(channel, { service: 'user_service', request_type: 'get_user', request_id: 'r1', args: { user_id: '2' } });
    assert.equal(r.success, true);
    assert.equal(r.result.name, 'Bob');
    assert.equal(r.request_id, 'r1');
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    await stack.stop();
  }
});

test('200 concurrent calls over 4 sockets are each answered once, correctly', async () => {
  const stack = await startStack({ workers: ['user_service'] });
  try {
    const channels = [];
    for (let i = 0; i < 4; i++) channels.push((await join(connect(stack.url, {}, stack))).channel);
    const calls = [];
    for (let i = 0; i < 200; i++) {
      const id = String((i % 2) + 1);
      calls.push(call(channels[i % 4], { service: 'user_service', request_type: 'get_user', request_id: `c${i}`, args: { user_id: id } })
        .then((r) => ({ i, id, r })));
    }
    const results = await Promise.all(calls);
    for (const { i, id, r } of results) {
      assert.equal(r.request_id, `c${i}`);
      assert.equal(r.success, true);
      assert.equal(r.result.id, id);
    }
    // Exactly once: every request id appears once among each channel's pushes.
    const seen = new Map();
    for (const ch of channels) {
      for (const p of ch.pushes) seen.set(p.request_id, (seen.get(p.request_id) || 0) + 1);
    }
    assert.equal(seen.size, 200);
    for (const n of seen.values()) assert.equal(n, 1);
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    await stack.stop();
  }
});

// Replies that pile up for one socket leave the gateway several to a write: frames of every
// length encoding (7-bit, 16-bit, 64-bit) must come out intact and in the right order.
test('pipelined replies of mixed sizes on one socket arrive whole', async () => {
  const stack = await startStack({ workers: ['genapi-test-worker'] });
  try {
    const { channel } = await join(connect(stack.url, {}, stack));
    const sizes = [1, 100, 125, 126, 127, 1000, 65535, 65536, 70000, 5, 200000, 3];
    const calls = [];
    for (let round = 0; round < 3; round++) {
      sizes.forEach((n, i) => {
        // As strings of at most 3000 bytes each (the global cap on every string argument).
        const text = String.fromCharCode(97 + ((i + round) % 26)).repeat(n);
        const value = text.match(/[\s\S]{1,3000}/g);
        calls.push(call(channel, { service: 'test_service', request_type: 'echo', request_id: `e${round}-${i}`, args: { value } })
          .then((r) => ({ r, want: value, id: `e${round}-${i}` })));
      });
    }
    for (const { r, want, id } of await Promise.all(calls)) {
      assert.equal(r.request_id, id);
      assert.equal(r.success, true, r.error);
      assert.equal(r.result.value.join('').length, want.join('').length, id);
      assert.deepEqual(r.result.value, want, id);
    }
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    await stack.stop();
  }
});
