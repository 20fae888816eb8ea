// SPDX-License-Identifier: MIT
// The walkthrough's section 3 with real tokens: the four permission modes and a worker
// permission callback, each allowed and denied, with user_id and user_roles spoofed in the
// payload (always ignored: identity comes from the connection).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { startStack, connect, join, call } = require('../support/stack');
const { sign, now } = require('../support/jwt');

const SECRET = 'test-secret-for-the-permission-tests';
const GATEWAY = ['--set', 'auth=jwt', '--set', `jwt_secret=${SECRET}`, '--set', 'allow_anonymous=true'];
const token = (sub, roles) => sign({ sub, roles, exp: now() + 600 }, SECRET);

async function as(stack, sub, roles) {
  const params = sub ? { token: token(sub, roles) } : {};
  return (await join(connect(stack.url, params, stack))).channel;
}

// Calls with spoofed identity fields in the payload, which must change nothing.
const req = (ch, service, request_type, args = {}) => call(ch, {
  request_id: `${request_type}-${Math.random()}`, service, request_type, args,
  user_id: 'admin_user', user_roles: ['admin'], roles: ['admin'],
});

test('permission modes with JWT identities', async () => {
  const stack = await startStack({ workers: ['user_service', 'admin_service'], gatewayArgs: GATEWAY });
  try {
    const anon = await as(stack, null);
    const user42 = await as(stack, 'user_42', ['editor']);
    const admin = await as(stack, 'root', ['admin', 'editor']);
    const viewer = await as(stack, 'user_7', ['viewer']);
    const operator = await as(stack, 'op_1', ['operator']);

    // false: anyone.
    assert.equal((await req(anon, 'user_service', 'list_users')).success, true);

    // any_authenticated.
    let r = await req(anon, 'user_service', 'get_profile');
    assert.deepEqual([r.success, r.error], [false, 'Permission denied']);
    r = await req(user42, 'user_service', 'get_profile');
    assert.equal(r.success, true);
    assert.equal(r.result.user_id, 'user_42');

    // arg:user_id.
    r = await req(user42, 'user_service', 'get_user_profile', { user_id: 'user_42' });
    assert.equal(r.success, true);
    r = await req(user42, 'user_service', 'get_user_profile', { user_id: 'user_999' });
    assert.deepEqual([r.success, r.error], [false, 'Permission denied']);
    r = await req(anon, 'user_service', 'get_user_profile', { user_id: 'admin_user' });
    assert.equal(r.error, 'Permission denied');

    // role:[admin].
    r = await req(admin, 'admin_service', 'delete_user', { user_id: 'u9' });
    assert.deepEqual(r.result, { deleted: 'u9' });
    r = await req(viewer, 'admin_service', 'delete_user', { user_id: 'u9' });
    assert.deepEqual([r.success, r.error], [false, 'Permission denied']);
    r = await req(anon, 'admin_service', 'delete_user', { user_id: 'u9' });
    assert.equal(r.error, 'Permission denied');

    // A permission callback in a worker (admin_service.authorize: admin or operator).
    r = await req(operator, 'admin_service', 'admin_action', { action: 'reindex' });
    assert.deepEqual(r.result, { action: 'reindex', performed_by: 'op_1' });
    // A denial carries the callback's reason (its error answer).
    r = await req(viewer, 'admin_service', 'admin_action', { action: 'reindex' });
    assert.deepEqual([r.success, r.error], [false, 'Permission denied: unauthorized']);
    r = await req(anon, 'admin_service', 'admin_action', { action: 'reindex' });
    assert.equal(r.error, 'Permission denied: unauthorized');
  } finally {
    await stack.stop();
  }
});

// The callback contract (docs/protocol.md, "Permissions"): an ok answer allows, an error
// answer denies with its reason, and any other failure denies without one.
test('permission callback: ok allows, an error denies with its reason, other failures deny plainly', async () => {
  const stack = await startStack({ workers: ['genapi-test-worker'] });
  try {
    const { channel } = await join(connect(stack.url, {}, stack));
    const ask = (request_type, args = {}) => call(channel, { request_id: request_type, service: 'test_service', request_type, args });
    let r = await ask('guarded_async', { value: 'open' });
    assert.deepEqual([r.success, r.kind], [true, 'ack']); // the guard answered ok (null)
    r = await ask('guarded_async', { value: 'shut' });
    assert.deepEqual([r.success, r.error], [false, 'Permission denied: value is not open']);
    r = await ask('guarded_by_fail', { value: 1 });
    assert.deepEqual([r.success, r.error], [false, 'Permission denied: boom']);
    // A callback that never answers (the library answers Internal Server Error), and one that
    // does not exist: denied, with no reason to show.
    r = await ask('guarded_by_silent', { value: 1 });
    assert.deepEqual([r.success, r.error, r.can_retry], [false, 'Permission denied', false]);
    r = await ask('guarded_by_nothing', { value: 1 });
    assert.deepEqual([r.success, r.error, r.can_retry], [false, 'Permission denied', false]);
  } finally {
    await stack.stop();
  }
});

test('require_auth refuses anonymous requests', async () => {
  const stack = await startStack({ workers: ['user_service'], gatewayArgs: [...GATEWAY, '--set', 'require_auth=true'] });
  try {
    const anon = await as(stack, null);
    const r = await req(anon, 'user_service', 'list_users');
    assert.deepEqual([r.success, r.error], [false, 'Authentication required']);
    const user = await as(stack, 'user_1', []);
    assert.equal((await req(user, 'user_service', 'list_users')).success, true);
  } finally {
    await stack.stop();
  }
});
