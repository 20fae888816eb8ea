// SPDX-License-Identifier: MIT
// A 2-second smoke run of genapi-bench against the integration stack: the load generator
// connects, joins, completes requests without errors, and prints its JSON report.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { BIN, startStack } = require('../support/stack');

test('genapi-bench smoke run: 2 s of sync calls without errors', async () => {
  const stack = await startStack({ workers: ['user_service'] });
  try {
    const url = `${stack.url}/websocket?vsn=2.0.0`;
    const out = await new Promise((resolve, reject) => execFile(path.join(BIN, 'genapi-bench'),
      ['--url', url, '--mode', 'sync', '--connections', '2', '--inflight', '2', '--duration', '2',
        '--gateway-pid', String(stack.gateway.child.pid), '--json'],
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stdout}\n${stderr}`)) : resolve(stdout))));
    const report = JSON.parse(out.trim().split('\n').pop());
    assert.equal(report.mode, 'sync');
    assert.equal(report.ready, 2);
    assert.ok(report.requests > 0, `${report.requests} requests`);
    assert.equal(report.errors.total, 0);
    assert.ok(report.latency_us.p50 > 0 && report.latency_us.p50 <= report.latency_us.p99);
    assert.ok(report.latency_us.p99 <= report.latency_us.max);
  } finally {
    await stack.stop();
  }
});

// The relay scenario's code path (make bench runs it with 1000 members): every member of one
// group over two gateways, two senders, each message received by every member.
test('genapi-bench smoke run: relay mode over two gateways without errors', async () => {
  const auth = ['--set', 'auth=service', '--set', 'auth_service=test_service.authenticate'];
  const stack = await startStack({ workers: ['genapi-test-worker'], gatewayArgs: auth });
  try {
    const gwB = await stack.startGateway();
    const out = await new Promise((resolve, reject) => execFile(path.join(BIN, 'genapi-bench'),
      ['--url', `${stack.url}/websocket?vsn=2.0.0`, '--url2', `${gwB.url}/websocket?vsn=2.0.0`,
        '--mode', 'relay', '--group', 'smoke', '--connections', '20', '--senders', '2',
        '--inflight', '4', '--duration', '2', '--gateway-pid', String(stack.gateway.child.pid),
        '--also-pid', String(gwB.child.pid), '--also-pid', String(stack.broker.child.pid), '--json'],
      (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stdout}\n${stderr}`)) : resolve(stdout))));
    const report = JSON.parse(out.trim().split('\n').pop());
    assert.equal(report.mode, 'relay');
    assert.equal(report.ready, 20);
    assert.equal(report.errors.total, 0, out);
    assert.ok(report.relay.messages_complete > 0, out);
    assert.equal(report.relay.messages_given_up, 0);
    assert.equal(report.relay.gaps, 0);
    // Every delivery is one member's copy: complete messages had 20 each, the rest fewer.
    assert.ok(report.relay.deliveries >= 20 * report.relay.messages_complete, out);
    assert.ok(report.relay.deliveries <= 20 * report.relay.messages_sent, out);
    assert.ok(report.latency_us.p50 > 0 && report.latency_us.p50 <= report.latency_us.p99);
  } finally {
    await stack.stop();
  }
});
