// SPDX-License-Identifier: MIT
// The option `broker` names the broker's worker endpoint for a worker and its gateway endpoint
// for a gateway. Pointed at the other one, each is told which port to use; pointed at nothing,
// each says it cannot reach the broker. Both are logged once, not once per retry.
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { Proc, startBroker, eventually } = require('../support/stack');

const count = (text, re) => (text.match(new RegExp(re.source, 'g')) || []).length;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test('a worker on the gateway port is told which port to use, once', async () => {
  const broker = await startBroker();
  const worker = new Proc('genapi-test-worker', ['--set', `broker=${broker.endpoints.gateways}`,
    '--set', 'heartbeat_ms=200']);
  try {
    const re = /refused the function table: wrong port: this is the broker's gateway endpoint .*worker_endpoint, default port 5570/;
    await eventually(() => re.test(worker.stderr), 10000);
    await sleep(3000); // several REGISTER retries later
    assert.equal(count(worker.stderr, re), 1, worker.stderr);
    assert.doesNotMatch(worker.stderr, /unexpected SNAPSHOT/);
    assert.doesNotMatch(worker.stdout || '', /READY/);
    assert.equal(worker.lines.filter((l) => l.startsWith('READY')).length, 0);
  } finally {
    await worker.stop();
    await broker.stop();
  }
});

test('a gateway on the worker port is told which port to use, once', async () => {
  const broker = await startBroker();
  const gateway = new Proc('genapi-gateway', ['--set', `broker=${broker.endpoints.workers}`,
    '--set', 'listen=127.0.0.1:0', '--set', 'metrics_listen=127.0.0.1:0', '--set', 'heartbeat_ms=200']);
  try {
    const re = /refused this gateway: wrong port: this is the broker's worker endpoint .*gateway_endpoint, default port 5571/;
    await eventually(() => re.test(gateway.stderr), 10000);
    await sleep(3000);
    assert.equal(count(gateway.stderr, re), 1, gateway.stderr);
    assert.doesNotMatch(gateway.stderr, /no answer from the broker/);
    assert.equal(gateway.lines.filter((l) => l.startsWith('READY')).length, 0);
  } finally {
    await gateway.stop();
    await broker.stop();
  }
});

test('a worker and a gateway whose broker is not there say so, once', async () => {
  // A port with no broker: bind one, note its endpoints, stop it.
  const gone = await startBroker();
  const { workers, gateways } = gone.endpoints;
  await gone.stop();
  const worker = new Proc('genapi-test-worker', ['--set', `broker=${workers}`, '--set', 'heartbeat_ms=200']);
  const gateway = new Proc('genapi-gateway', ['--set', `broker=${gateways}`, '--set', 'listen=127.0.0.1:0',
    '--set', 'metrics_listen=127.0.0.1:0', '--set', 'heartbeat_ms=200']);
  try {
    const wre = /no answer from the broker at .* is this worker's broker option the broker's worker endpoint/;
    const gre = /no answer from the broker at .* is this gateway's broker option the broker's gateway endpoint/;
    await eventually(() => wre.test(worker.stderr) && gre.test(gateway.stderr), 10000);
    await sleep(3000);
    assert.equal(count(worker.stderr, wre), 1, worker.stderr);
    assert.equal(count(gateway.stderr, gre), 1, gateway.stderr);
  } finally {
    await worker.stop();
    await gateway.stop();
  }
});
