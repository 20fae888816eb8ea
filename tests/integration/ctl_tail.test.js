// SPDX-License-Identifier: MIT
// genapi-ctl tail against a running stack (docs/telemetry.md, "Tailing a running process"):
// the gateway's request start and stop events of a call, filtered by PREFIX; the broker's
// config events; refusals without the admin token (and, on the broker, without the "tail"
// admin action).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawn, execFile } = require('node:child_process');
const { BIN, ADMIN_TOKEN, startStack, connect, join, call, eventually, startTail } = require('../support/stack');

const tail = startTail;

function run(args, env = {}) {
  return new Promise((resolve) => execFile(path.join(BIN, 'genapi-ctl'), args,
    { timeout: 15000, env: { ...process.env, ...env } },
    (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr })));
}

test('tail shows the gateway request start and stop of a call, filtered by prefix', async () => {
  const stack = await startStack({ workers: ['user_service'], brokerArgs: ['--set', 'admin_actions=status,tail'] });
  const tails = [];
  try {
    const gw = `127.0.0.1:${stack.gateway.metricsPort}`;
    const exec = tail(['genapi.executor', '--gateway-http', gw]);
    const all = tail(['--gateway-http', gw]);
    tails.push(exec, all);
    for (const t of tails) await eventually(() => t.lines.length >= 1 || t.exited, 10000);
    for (const t of tails) {
      assert.equal(t.exited, null, t.stderr);
      assert.equal(t.lines[0].attached, true);
      assert.equal(t.lines[0].program, 'genapi-gateway');
    }
    assert.equal(exec.lines[0].prefix, 'genapi.executor');

    const { channel } = await join(connect(stack.url, {}, stack));
    const r = await call(channel, { service: 'user_service', request_type: 'get_user', request_id: 'tail-1', args: { user_id: '1' } });
    assert.equal(r.success, true);

    const stopOf = (t) => t.lines.find((l) => l.name === 'genapi.executor.request.stop' && l.metadata.request_id === 'tail-1');
    await eventually(() => stopOf(exec) && stopOf(all), 10000);
    const start = exec.lines.find((l) => l.name === 'genapi.executor.request.start');
    assert.deepEqual(start.measurements, {});
    assert.equal(start.metadata.service, 'user_service');
    assert.equal(start.metadata.request_type, 'get_user');
    assert.equal(start.metadata.request_id, 'tail-1');
    const stop = stopOf(exec);
    assert.equal(stop.metadata.success, true);
    assert.ok(stop.measurements.duration_us > 0);
    assert.ok(stop.at_ms >= start.at_ms);
    // The prefix filter: the executor tail saw no connection event; the unfiltered one did.
    assert.ok(exec.lines.slice(1).every((l) => l.name.startsWith('genapi.executor.')), JSON.stringify(exec.lines));
    assert.ok(all.lines.some((l) => l.name === 'genapi.connection.connect'));
    assert.ok(all.lines.some((l) => l.name === 'genapi.connection.join' && l.metadata.topic === 'api:lobby'));
  } catch (e) {
    stack.dumpLogs();
    for (const t of tails) console.error(t.stderr);
    throw e;
  } finally {
    for (const t of tails) await t.stop();
    await stack.stop();
  }
});

test('tail on the broker: its config events, and the admin gate', async () => {
  const stack = await startStack({ workers: [], brokerArgs: ['--set', 'admin_actions=status,tail'] });
  const tails = [];
  try {
    const bk = `127.0.0.1:${stack.broker.metricsPort}`;
    const gw = `127.0.0.1:${stack.gateway.metricsPort}`;
    // Refusals: wrong token on either, and a prefix that selects nothing.
    let r = await run(['tail', '--broker-http', bk, '--token', 'wrong']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /answered 403: admin token required/);
    r = await run(['tail', '--gateway-http', gw], { GENAPI_ADMIN_TOKEN: '' });
    assert.match(r.stderr, /answered 403: admin token required/);
    r = await run(['tail', 'genapi.exec', '--gateway-http', gw]);
    assert.match(r.stderr, /answered 404: no event matches this prefix/);

    const t = tail(['genapi.config', '--broker-http', bk]);
    tails.push(t);
    await eventually(() => t.lines.length >= 1 || t.exited, 10000);
    assert.equal(t.lines[0].program, 'genapi-broker', t.stderr);
    // A worker registering: the broker's genapi.config.push.
    const { startWorker } = require('../support/stack');
    const w = await startWorker('user_service', stack.broker);
    stack.procs.splice(1, 0, w);
    await eventually(() => t.lines.find((l) => l.name === 'genapi.config.push'), 10000);
    const push = t.lines.find((l) => l.name === 'genapi.config.push');
    assert.equal(push.metadata.service, 'user_service');
    assert.ok(push.measurements.count >= 1);
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    for (const t of tails) await t.stop();
    await stack.stop();
  }
});

test('tail on a broker whose admin_actions lacks tail is refused, naming it', async () => {
  const stack = await startStack({ workers: [] });
  try {
    const r = await run(['tail', '--broker-http', `127.0.0.1:${stack.broker.metricsPort}`, '--token', ADMIN_TOKEN]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /admin action not enabled \(admin_actions\)/);
  } finally {
    await stack.stop();
  }
});
