// SPDX-License-Identifier: MIT
// Config verify from a worker (docs/protocol.md, "Config verify from workers"): a real worker
// that pushed config_version "1.0.0" asks the broker through the worker library (wk_verify,
// genapi-test-worker's `verify`) and gets matched, mismatch with the stored version, and
// not_found for a service that never pushed; never from a non_blocking handler; with CURVE on, a
// worker verifies only the services its certificate names.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { BIN, startBroker, startWorker, startGateway, connect, join, call } = require('../support/stack');

// test_service.`requestType` through the gateway at `url`: the handler's answer.
async function verifyVia(channel, args, requestType = 'verify') {
  const r = await call(channel, { request_id: `v-${Math.random()}`, service: 'test_service', request_type: requestType, args });
  assert.equal(r.success, true, JSON.stringify(r));
  return r.result;
}

// Broker, genapi-test-worker (config_version 1.0.0) and a gateway; extra args for each.
async function verifyStack({ brokerArgs = [], workerArgs = [], gatewayArgs = [] } = {}) {
  const broker = await startBroker({ args: brokerArgs });
  const procs = [broker];
  try {
    procs.push(await startWorker('genapi-test-worker', broker,
      { args: ['--set', 'config_version=1.0.0', ...workerArgs] }));
    const gateway = await startGateway(broker, { args: gatewayArgs });
    procs.push(gateway);
    const socket = connect(gateway.url);
    const { channel } = await join(socket);
    return {
      channel,
      stop: async () => {
        socket.disconnect();
        for (const p of procs.reverse()) await p.stop();
      },
      kill: () => { for (const p of procs) p.kill('SIGKILL'); },
      dump: () => { for (const p of procs) console.error(`----- ${p.name} -----\n${p.stderr}`); },
    };
  } catch (e) {
    for (const p of procs) p.kill('SIGKILL');
    throw e;
  }
}

test('worker verify: matched, mismatch with the stored version, not_found', async () => {
  const s = await verifyStack();
  try {
    assert.deepEqual(await verifyVia(s.channel, { service: 'test_service', version: '1.0.0' }),
      { status: 'matched' });
    assert.deepEqual(await verifyVia(s.channel, { service: 'test_service', version: '2.0.0' }),
      { status: 'mismatch', stored_version: '1.0.0' });
    assert.deepEqual(await verifyVia(s.channel, { service: 'no_such_service', version: '1.0.0' }),
      { status: 'not_found' });
    // A non_blocking handler runs on the I/O thread, which carries the answer: refused at once.
    const nb = await verifyVia(s.channel, { service: 'test_service', version: '1.0.0' }, 'verify_nb');
    assert.deepEqual(nb, { status: 'failed', error: 'verify waits for the broker: not from a non_blocking handler',
      code: 1, can_retry: false });
    // An empty version is refused by the library before it reaches the broker.
    const bad = await verifyVia(s.channel, { service: 'test_service', version: '' });
    assert.equal(bad.status, 'failed');
    assert.match(bad.error, /^invalid verify/);
    await s.stop();
  } catch (e) {
    s.dump();
    s.kill();
    throw e;
  }
});

function run(prog, args) {
  return new Promise((resolve) => execFile(path.join(BIN, prog), args, { timeout: 15000 },
    (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr })));
}

test('worker verify with CURVE: only the services its certificate names', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'genapi-verify-'));
  const peers = path.join(dir, 'peers');
  fs.mkdirSync(peers);
  const gen = async (out, role, extra = []) => {
    const r = await run('genapi-ctl', ['keygen', '--role', role, '--out', out, ...extra]);
    assert.equal(r.code, 0, r.stderr);
    return out;
  };
  const brokerKey = await gen(path.join(dir, 'broker'), 'broker');
  const gwKey = await gen(path.join(peers, 'gateway'), 'gateway', ['--name', 'gw1']);
  const wKey = await gen(path.join(peers, 'test_service'), 'worker', ['--services', 'test_service']);
  const client = (key) => ['--set', `curve_secret_file=${key}`, '--set', `curve_broker_file=${brokerKey}`];
  const s = await verifyStack({
    brokerArgs: ['--set', `curve_secret_file=${brokerKey}`, '--set', `curve_peers_dir=${peers}`],
    workerArgs: client(wKey),
    gatewayArgs: client(gwKey),
  });
  try {
    assert.deepEqual(await verifyVia(s.channel, { service: 'test_service', version: '2.0.0' }),
      { status: 'mismatch', stored_version: '1.0.0' });
    const r = await verifyVia(s.channel, { service: 'user_service', version: '1.0.0' });
    assert.equal(r.status, 'failed');
    assert.equal(r.code, 1);
    assert.match(r.error, /^Permission denied: worker key .* may verify only the services its certificate names \(test_service\)$/);
    await s.stop();
  } catch (e) {
    s.dump();
    s.kill();
    throw e;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
