// SPDX-License-Identifier: MIT
// The broker restarted under a connected worker and gateway: while it is down calls are
// answered with an error (no hang); once it is back, the worker re-registers and the gateway
// gets a fresh registry, by themselves, for old and new client sockets alike.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { startStack, startBroker, connect, join, call, eventually } = require('../support/stack');

test('broker restart: workers and gateways reconnect by themselves', async () => {
  const stack = await startStack({ workers: ['user_service'] });
  let broker2 = null;
  try {
    const { channel: old } = await join(connect(stack.url, {}, stack));
    const first = await call(old, { service: 'user_service', request_type: 'get_user', request_id: 'before', args: { user_id: '1' } });
    assert.equal(first.success, true);

    const endpoints = stack.broker.endpoints;
    await stack.broker.stop();
    stack.procs.splice(stack.procs.indexOf(stack.broker), 1);

    const downAt = Date.now();
    const down = await call(old, { service: 'user_service', request_type: 'get_user', request_id: 'down', args: { user_id: '1' } }, 10000);
    assert.equal(down.success, false);
    assert.ok(['Service unavailable', 'Request timed out'].includes(down.error), down.error);
    assert.ok(Date.now() - downAt < 7000);

    const worker = stack.workers[0];
    const readyLines = worker.lines.length;
    broker2 = await startBroker({ endpoints });
    stack.procs.unshift(broker2);
    await worker.waitForLine(/^READY worker /, 10000, readyLines);

    const ok = (ch, id) => call(ch, { service: 'user_service', request_type: 'get_user', request_id: id, args: { user_id: '2' } })
      .then((r) => r.success && r);
    const again = await eventually(() => ok(old, `old${Date.now()}`), 10000);
    assert.equal(again.result.name, 'Bob');
    const { channel: fresh } = await join(connect(stack.url, {}, stack));
    const viaNew = await eventually(() => ok(fresh, `new${Date.now()}`), 10000);
    assert.equal(viaNew.result.name, 'Bob');
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    await stack.stop();
  }
});
