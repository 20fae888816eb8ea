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
