// SPDX-License-Identifier: MIT
// The registry snapshot's bound (docs/protocol.md, "Registration"; docs/operations.md, "Limits"):
// every gateway gets the whole registry in one SNAPSHOT message, which may carry at most 4 MiB.
// The broker refuses, whole and with a reason, a REGISTER whose table would make the snapshot
// larger; the worker logs that reason; the registry, and every gateway's copy, stay as they were.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { BIN, Proc, startBroker, startGateway, connect, join, call, eventually } = require('../support/stack');

// `n` configs of `service`, each carrying a string default of `bytes` bytes (max_bytes lifts
// the string cap, so one config may be that large).
function bigTable(service, n, bytes) {
  return Array.from({ length: n }, (_, i) => ({
    service,
    request_type: `f${i}`,
    arg_types: { s: { type: 'string', max_bytes: bytes, default_value: 'x'.repeat(bytes) } },
  }));
}

// One REGISTER from a worker-like peer (its body on stdin: larger than an argument may be);
// resolves with REGISTERED.
function register(broker, service, functions) {
  return new Promise((resolve, reject) => {
    const p = spawn(path.join(BIN, 'genapi-test-register'), [broker.endpoints.workers, '-']);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(stdout)) : reject(new Error(`exit ${code}: ${stderr}`))));
    p.stdin.end(JSON.stringify({ node: `${service}@test`, service, config_version: `${service}-1`, functions }));
  });
}

test('a table that would make the registry snapshot larger than a message is refused with "registry full"', async () => {
  const broker = await startBroker();
  const procs = [broker];
  let socket = null;
  try {
    // 3 MB: accepted.
    let r = await register(broker, 'big', bigTable('big', 3, 1000000));
    assert.deepEqual([r.ok, r.failed], [true, []], JSON.stringify(r).slice(0, 500));
    // 1.2 MB more: the snapshot would pass 4 MiB. Refused whole, with the reason.
    r = await register(broker, 'more', bigTable('more', 2, 600000));
    assert.equal(r.ok, false);
    assert.match(r.error, /^registry full: the 2 function\(s\) of more would make the registry snapshot \d+ bytes, over the 4190208 bytes a message may carry \(docs\/operations\.md, "Limits"\)$/);
    assert.match(broker.stderr, /REGISTER refused: registry full: /);

    // A real worker whose table does not fit any more: it logs the broker's reason, and keeps
    // retrying (never registered, so never READY). The filler goes first: a worker started
    // before it could register its table while there was still room.
    r = await register(broker, 'filler', bigTable('filler', 1, 4190208 - 3000300 - 2000));
    assert.equal(r.ok, true, JSON.stringify(r).slice(0, 500));
    const worker = new Proc('genapi-test-worker', ['--set', `broker=${broker.endpoints.workers}`, '--set', 'heartbeat_ms=200']);
    procs.push(worker);
    await eventually(() => /refused the function table: registry full: the \d+ function\(s\) of test_service would make the registry snapshot/.test(worker.stderr));
    assert.equal(worker.lines.some((l) => l.startsWith('READY')), false);

    // A gateway gets the snapshot (the functions accepted, none refused) and serves from it: a
    // function of big is known (no worker now: Service unavailable), more's is unknown.
    const gateway = await startGateway(broker);
    procs.push(gateway);
    socket = connect(gateway.url);
    const { channel } = await join(socket);
    await eventually(async () => (await call(channel, { request_id: 'b', service: 'big', request_type: 'f0' })).error !== 'Unknown function');
    const known = await call(channel, { request_id: 'b', service: 'big', request_type: 'f0' });
    assert.match(known.error, /unavailable/, JSON.stringify(known));
    const unknown = await call(channel, { request_id: 'm', service: 'more', request_type: 'f0' });
    assert.equal(unknown.error, 'Unknown function');
    const t = await call(channel, { request_id: 't', service: 'test_service', request_type: 'echo', args: { value: 1 } });
    assert.equal(t.error, 'Unknown function');
  } catch (e) {
    for (const p of procs) console.error(`----- ${p.name} stderr -----\n${p.stderr.slice(-3000)}`);
    throw e;
  } finally {
    if (socket) socket.disconnect();
    for (const p of procs.reverse()) await p.stop();
  }
});
