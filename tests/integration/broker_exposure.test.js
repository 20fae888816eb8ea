// SPDX-License-Identifier: MIT
// The broker's sockets carry caller identities and accept registrations without transport
// security, so by default they listen on loopback only; an endpoint beyond loopback is refused
// at start unless `insecure_bind` says the network is trusted, and then a push token is required.
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const path = require('node:path');
const { BIN, startBroker, eventually } = require('../support/stack');

function runBroker(args) {
  return new Promise((resolve) => {
    execFile(path.join(BIN, 'genapi-broker'), args, { timeout: 10000 }, (err, stdout, stderr) => {
      resolve({ code: err ? err.code : 0, stdout, stderr });
    });
  });
}

const LOOPBACK = ['--set', 'worker_endpoint=tcp://127.0.0.1:*', '--set', 'gateway_endpoint=tcp://127.0.0.1:*',
  '--set', 'stream_in_endpoint=tcp://127.0.0.1:*', '--set', 'stream_out_endpoint=tcp://127.0.0.1:*'];

test('broker: every default endpoint is on loopback', async () => {
  const r = await runBroker(['--print-config']);
  assert.equal(r.code, 0, r.stderr);
  const cfg = JSON.parse(r.stdout);
  for (const name of ['worker_endpoint', 'gateway_endpoint', 'stream_in_endpoint', 'stream_out_endpoint']) {
    assert.match(cfg[name], /^tcp:\/\/127\.0\.0\.1:\d+$/);
  }
  assert.equal(cfg.insecure_bind, false);
});

test('broker: an endpoint beyond loopback is refused without insecure_bind, naming it', async () => {
  for (const ep of ['tcp://*:*', 'tcp://0.0.0.0:*']) {
    const r = await runBroker([...LOOPBACK, '--set', `gateway_endpoint=${ep}`]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /gateway_endpoint: .* listens beyond loopback .*insecure_bind=true/);
    assert.doesNotMatch(r.stdout, /^READY/m);
  }
});

test('broker: insecure_bind still requires a push token beyond loopback', async () => {
  const r = await runBroker([...LOOPBACK, '--set', 'worker_endpoint=tcp://*:*', '--set', 'insecure_bind=true']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /push_token: required when the broker listens beyond loopback/);
});

test('broker: insecure_bind with a push token starts, with a warning per exposed endpoint', async () => {
  const broker = await startBroker({
    endpoints: { workers: 'tcp://*:*' },
    args: ['--set', 'insecure_bind=true', '--set', 'push_token=exposure-test-token'],
  });
  try {
    assert.match(broker.endpoints.workers, /^tcp:\/\/0\.0\.0\.0:\d+$/);
    // stderr and stdout are separate pipes: the warning, written first, may be read after READY.
    await eventually(() => /insecure_bind: worker_endpoint tcp:\/\/\*:\* is reachable beyond this host/
      .test(broker.stderr), 5000);
    assert.doesNotMatch(broker.stderr, /insecure_bind: gateway_endpoint/);
  } finally {
    await broker.stop();
  }
});
