// SPDX-License-Identifier: MIT
// request_info decides whether a handler sees the caller's identity (user id, roles, device id,
// ip): the same handler, declared with and without it, called by the same authenticated client.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { startStack, connect, join, call } = require('../support/stack');
const { sign, now } = require('../support/jwt');

const SECRET = 'test-secret-for-the-request-info-tests';

test('a handler sees the caller only when its function declares request_info', async () => {
  const stack = await startStack({
    workers: ['genapi-test-worker'],
    gatewayArgs: ['--set', 'auth=jwt', '--set', `jwt_secret=${SECRET}`],
  });
  try {
    const token = sign({ sub: 'u1', roles: ['admin'], device_id: 'phone-9', exp: now() + 600 }, SECRET);
    const { channel } = await join(connect(stack.url, { token }, stack));
    let r = await call(channel, { request_id: 'i1', service: 'test_service', request_type: 'identity' });
    assert.equal(r.success, true, r.error);
    assert.deepEqual(r.result, { user_id: 'u1', admin: true, device_id: 'phone-9', ip: '127.0.0.1', request_id: 'i1' });

    r = await call(channel, { request_id: 'i2', service: 'test_service', request_type: 'identity_blind' });
    assert.equal(r.success, true, r.error);
    assert.deepEqual(r.result, { user_id: null, admin: false, device_id: null, ip: null, request_id: 'i2' });

    // The gateway still knows who calls, for its own checks: any_authenticated passes.
    r = await call(channel, { request_id: 'w', service: 'test_service', request_type: 'whoami' });
    assert.deepEqual(r.result, { user_id: 'u1', roles: ['admin'], device_id: 'phone-9' });
  } finally {
    await stack.stop();
  }
});
