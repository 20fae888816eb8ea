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
