// SPDX-License-Identifier: MIT
// Internal functions (visibility "internal": docs/protocol.md, "Function config";
// docs/security.md, "Internal functions") through real processes. A function that serves the
// gateway or the broker (a hook, a permission callback, the identity service of auth=service, a
// nodes resolver) answers a client's direct call exactly as a function that does not exist,
// whatever args the client sends, while the gateway's and the broker's own calls still reach it.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { startBroker, startWorker, startGateway, connect, join, call, waitForPushes } = require('../support/stack');

// A response without its request_id, for comparing a refusal with another.
const bare = ({ request_id, ...rest }) => rest; // eslint-disable-line no-unused-vars

test('test_service: hooks, permission callbacks, the identity service and resolvers are unknown to clients but serve the gateway and broker', async () => {
  const procs = [];
  const sockets = [];
  try {
    const broker = await startBroker();
    procs.push(broker);
    // Node n2: test_service.resolve_n2 allows only it, so where_resolved runs here.
    procs.push(await startWorker('genapi-test-worker', broker, { args: ['--set', 'node=n2'] }));
    procs.push(await startWorker('admin_service', broker));
    const gateway = await startGateway(broker, {
      args: ['--set', 'auth=service', '--set', 'auth_service=test_service.authenticate'],
    });
    procs.push(gateway);
    // The gateway's auth call reaches the internal identity service: the connection is alice's.
    const socket = connect(gateway.url, { token: 'user:alice:admin' });
    sockets.push(socket);
    const { channel } = await join(socket);
    let seq = 0;
    const ask = (service, request_type, args) => call(channel, { request_id: `i${++seq}`, service, request_type, args });

    // The reference: what a function that does not exist gets.
    const unknown = bare(await ask('test_service', 'no_such_function', {}));
    assert.deepEqual([unknown.success, unknown.error, unknown.can_retry], [false, 'Unknown function', false]);
    const request = { request_id: 'x', service: 'test_service', request_type: 'hooked', version: null, args: { value: 1 }, user_id: 'alice', roles: ['admin'], device_id: null, ip: '127.0.0.1' };
    const direct = [
      ['test_service', 'authenticate', { params: { token: 'user:mallory:admin' }, ip: '127.0.0.1' }],
      ['test_service', 'authenticate', {}],
      ['test_service', 'guard', { service: 'test_service', request_type: 'guarded_async', args: { value: 'open' }, user_id: 'alice', roles: [], device_id: null, ip: null }],
      ['test_service', 'failing_guard', {}],
      ['test_service', 'hook_before', { hook: 'before', request, config: {}, extra: { x: 7 }, result: null }],
      ['test_service', 'hook_after', { hook: 'after', request, config: {}, extra: null, result: 1 }],
      ['test_service', 'resolve_n2', {}],
      ['test_service', 'resolve_slowly', { bogus: true }],
      ['admin_service', 'authorize', { service: 'admin_service', request_type: 'admin_action', args: {}, user_id: 'alice', roles: ['admin'], device_id: null, ip: null }],
    ];
    for (const [service, fn, args] of direct) {
      const r = await ask(service, fn, args);
      const want = service === 'test_service' ? unknown : bare(await ask(service, 'no_such_function', args));
      assert.deepEqual(bare(r), want, `${service}.${fn}`);
    }
    // Nothing of those ran: no hook printed a line for them.
    assert.equal(procs[1].lines.filter((l) => l.startsWith('HOOK ')).length, 0);

    // The gateway's own calls still reach them: the hooks around hooked ...
    let r = await ask('test_service', 'hooked', { value: 1 });
    assert.deepEqual(r.result, { wrapped: { value: 1, mode: 'pass', tag: null }, hook: 'after' }, JSON.stringify(r));
    // ... the permission callbacks (a worker's own, and admin_service's authorize) ...
    r = await ask('test_service', 'guarded_async', { value: 'open' });
    assert.deepEqual([r.kind, r.async], ['ack', true], JSON.stringify(r));
    const result = (pushes) => pushes.find((p) => p.request_id === r.request_id && p.kind === 'result');
    assert.deepEqual(result(await waitForPushes(channel, result)).result, { value: 'open' });
    r = await ask('admin_service', 'admin_action', { action: 'reindex' });
    assert.deepEqual(r.result, { action: 'reindex', performed_by: 'alice' }, JSON.stringify(r));
    // ... and the broker's resolver call.
    r = await ask('test_service', 'where_resolved', {});
    assert.deepEqual(r.result, { node: 'n2' }, JSON.stringify(r));

    // A resolver naming a public function works (where_failing_resolver's test_service.fail),
    // and the broker warns of it at registration; internal targets are quiet.
    assert.match(broker.stderr, /test_service\.where_failing_resolver: nodes names test_service\.fail, a public function that clients can call directly/);
    assert.doesNotMatch(broker.stderr, /names test_service\.(guard|hook_before|hook_after|resolve_n2|authenticate)\b/);
    assert.doesNotMatch(broker.stderr, /names admin_service\.authorize/);
  } catch (e) {
    for (const p of procs) console.error(`----- ${p.name} stderr -----\n${p.stderr.slice(-4000)}`);
    throw e;
  } finally {
    for (const s of sockets) s.disconnect();
    for (const p of procs.reverse()) await p.stop();
  }
});
