// SPDX-License-Identifier: MIT
// A worker and a gateway started before their broker (as compose.yaml may start them: podman-compose
// waits for no condition): both keep trying, and once the broker starts the worker registers, the
// gateway prints READY and calls work, with no restart of either (docs/operations.md, "Containers").
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { Proc, startBroker, connect, join, call, eventually, HEARTBEAT_MS } = require('../support/stack');

test('a worker and a gateway started before the broker serve calls once it is up', async () => {
  // Endpoints with no broker yet: bind one, note its endpoints, stop it.
  const first = await startBroker();
  const endpoints = first.endpoints;
  await first.stop();
  const worker = new Proc('user_service', ['--set', `broker=${endpoints.workers}`,
    '--set', `heartbeat_ms=${HEARTBEAT_MS}`]);
  const gateway = new Proc('genapi-gateway', ['--set', `broker=${endpoints.gateways}`,
    '--set', 'listen=127.0.0.1:0', '--set', `heartbeat_ms=${HEARTBEAT_MS}`,
    '--set', 'metrics_listen=127.0.0.1:0']);
  let broker = null;
  let socket = null;
  try {
    await eventually(() => /no answer from the broker/.test(worker.stderr) &&
      /no answer from the broker/.test(gateway.stderr), 10000);
    assert.equal(worker.exited, null, worker.stderr);
    assert.equal(gateway.exited, null, gateway.stderr);
    broker = await startBroker({ endpoints });
    await worker.waitForLine(/^READY worker /, 15000);
    const { match } = await gateway.waitForLine(/^READY gateway (\S+)/, 15000);
    socket = connect(match[1]);
    const { channel } = await join(socket);
    const r = await eventually(() => call(channel, { service: 'user_service', request_type: 'get_user',
      request_id: `late${Date.now()}`, args: { user_id: '1' } }).then((x) => x.success && x), 10000);
    assert.equal(r.result.name, 'Alice');
  } catch (e) {
    for (const p of [worker, gateway, broker]) if (p) console.error(`----- ${p.name} -----\n${p.stderr}`);
    throw e;
  } finally {
    if (socket) socket.disconnect();
    await gateway.stop();
    await worker.stop();
    if (broker) await broker.stop();
  }
});
