// SPDX-License-Identifier: MIT
// The config cache's batch add and clear (docs/operations.md, "Versions"; docs/protocol.md,
// "Admin operations") through genapi-ctl against real processes: `add-config` given a list adds
// each config alone (the refused ones listed with their reasons and in the failed-configs list);
// `clear [SERVICE]` flushes the configs (operator overrides included), the gateway follows, and
// the live workers push their tables again in the same session (a call in flight is not lost).
// Their telemetry events, genapi.config.batch_add and genapi.config.clear, seen through
// `genapi-ctl tail`.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFile, spawn } = require('node:child_process');
const { BIN, startBroker, startWorker, startGateway, connect, join, call, eventually, startTail } = require('../support/stack');

const ACTIONS = 'status,functions,versions,get,disable,add_config,batch_add,clear,pushed_services,tail';
const SVC = 'versioned_user_service';

// genapi-ctl against `broker`: resolves {code, json, stderr}.
function ctl(broker, args) {
  return new Promise((resolve) => execFile(path.join(BIN, 'genapi-ctl'),
    [...args, '--broker', broker.endpoints.gateways], { timeout: 15000 },
    (err, stdout, stderr) => {
      let json = null;
      try { json = JSON.parse(stdout); } catch (e) { /* not JSON: the caller looks at stderr */ }
      resolve({ code: err ? err.code : 0, json, stderr });
    }));
}

// `genapi-ctl tail genapi.config` on the broker's admin listener: its events as parsed lines.
const tailConfig = (broker) => startTail(['genapi.config', '--broker-http', `127.0.0.1:${broker.metricsPort}`]);

// Broker (ACTIONS), the given workers, a gateway with a joined channel, and a tail of config
// events on the broker.
async function configStack(workers) {
  const broker = await startBroker({ args: ['--set', `admin_actions=${ACTIONS}`] });
  const procs = [broker];
  let t = null;
  try {
    const ws = {};
    for (const w of workers) {
      ws[w] = await startWorker(w, broker);
      procs.push(ws[w]);
    }
    const gateway = await startGateway(broker);
    procs.push(gateway);
    const socket = connect(gateway.url);
    const { channel } = await join(socket);
    t = tailConfig(broker);
    await t.attached();
    let n = 0;
    const callFn = (service, requestType, args, version) => call(channel, {
      service, request_type: requestType, request_id: `c${++n}`, ...(version ? { version } : {}), args,
    });
    return {
      broker, gateway, workers: ws, tail: t, call: callFn,
      stop: async () => {
        await t.stop();
        socket.disconnect();
        for (const p of procs.reverse()) await p.stop();
      },
      kill: () => { t.stop(); for (const p of procs) p.kill('SIGKILL'); },
      dump: () => {
        for (const p of procs) console.error(`----- ${p.name} -----\n${p.stderr}`);
        console.error(`----- tail -----\n${t.stderr}`);
      },
    };
  } catch (e) {
    if (t) t.stop();
    for (const p of procs) p.kill('SIGKILL');
    throw e;
  }
}

test('add-config with a list: partial acceptance, refusals listed and kept in failed-configs, one batch_add event', async () => {
  const s = await configStack([SVC]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'genapi-batch-'));
  try {
    assert.equal((await s.call(SVC, 'get_user', { id: '123' }, '1.0.0')).success, true);
    const v2 = (await ctl(s.broker, ['get', SVC, 'get_user', '2.0.0'])).json.config;
    const file = path.join(dir, 'batch.json');
    fs.writeFileSync(file, JSON.stringify([
      // Accepted: 1.0.0 narrowed to 2-byte ids, and 2.0.0 as pushed with a longer timeout.
      { service: SVC, request_type: 'get_user', version: '1.0.0', arg_types: { id: { type: 'string', max_bytes: 2 } } },
      { ...v2, timeout: 9000 },
      // Refused, each for its own reason.
      { service: SVC, request_type: 'get_user', version: '3.0.0' },
      { service: SVC, request_type: 'get_user', version: '1.0.0', timeout: 1 },
      'not a config',
    ]));
    const r = await ctl(s.broker, ['add-config', file]);
    assert.equal(r.code, 1, r.stderr); // not all were taken
    assert.equal(r.json.ok, false);
    assert.equal(r.json.error, '3 of 5 config(s) refused (the others were added)');
    assert.equal(r.json.added, 2);
    assert.deepEqual(r.json.refused.map((x) => [x.index, x.service, x.function]),
      [[2, SVC, 'get_user'], [3, SVC, 'get_user'], [4, null, '(unnamed)']]);
    assert.match(r.json.refused[0].reason, /no registered worker of versioned_user_service offers get_user 3\.0\.0/);
    assert.match(r.json.refused[1].reason, /^timeout: /);
    assert.equal(r.json.refused[2].reason, 'config required: a function config map with its service');
    // The accepted ones are in force at the gateway.
    const narrowed = await eventually(async () => {
      const c = await s.call(SVC, 'get_user', { id: '123' }, '1.0.0');
      return c.success === false && c;
    }, 5000);
    assert.match(narrowed.error, /id/);
    assert.equal((await ctl(s.broker, ['get', SVC, 'get_user', '2.0.0'])).json.config.timeout, 9000);
    // The refused ones are in the failed-configs list, with their reasons.
    const failed = (await ctl(s.broker, ['status'])).json.failed_configs;
    assert.deepEqual(failed.map((f) => [f.service, f.function]),
      [[SVC, 'get_user'], [SVC, 'get_user'], ['(none)', '(unnamed)']]);
    assert.equal(failed[1].reason, r.json.refused[1].reason);
    // A list given inline, all valid: ok.
    const all = await ctl(s.broker, ['add-config', JSON.stringify([
      { service: SVC, request_type: 'get_user', version: '1.0.0', arg_types: { id: 'string' } }])]);
    assert.equal(all.code, 0, all.stderr);
    assert.deepEqual([all.json.ok, all.json.added, all.json.refused], [true, 1, []]);
    // An empty list is refused whole.
    const empty = await ctl(s.broker, ['add-config', '[]']);
    assert.equal(empty.code, 1);
    assert.match(empty.json.error, /^configs required: a list of 1 to 1024/);
    // One batch_add event per batch, counting the configs added.
    await eventually(() => s.tail.events('genapi.config.batch_add').length === 2, 5000);
    const [first, second] = s.tail.events('genapi.config.batch_add');
    assert.deepEqual([first.measurements.count, first.metadata.success, first.metadata.reason], [2, false, 'partial']);
    assert.deepEqual([second.measurements.count, second.metadata.success], [1, true]);
    assert.equal(s.tail.events('genapi.config.add').length, 3); // each config added
    await s.stop();
  } catch (e) {
    s.dump();
    s.kill();
    throw e;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('clear SERVICE flushes its configs and overrides; its live workers push again without losing a call', async () => {
  const s = await configStack([SVC, 'genapi-test-worker']);
  try {
    // An operator's disable: a flush forgets it.
    assert.equal((await ctl(s.broker, ['disable', SVC, 'get_user', '1.0.0'])).code, 0);
    await eventually(async () => (await s.call(SVC, 'get_user', { id: '1' }, '1.0.0')).error === 'Function disabled', 5000);
    const before = (await ctl(s.broker, ['pushed-services'])).json.services;
    const testFns = (await ctl(s.broker, ['functions', 'test_service'])).json.functions.length;
    // A call in flight on test_service across its clear.
    const slow = s.call('test_service', 'sleep', { ms: 1500 }, null);
    await s.workers['genapi-test-worker'].waitForLine(/^HANDLER sleep start 1500/, 5000);
    const cleared = await ctl(s.broker, ['clear', 'test_service']);
    assert.equal(cleared.code, 0, cleared.stderr);
    assert.deepEqual(cleared.json, { ok: true, removed: testFns, workers_asked: 1 });
    const r = await slow;
    assert.deepEqual([r.success, r.result], [true, { slept: 1500 }]);
    // The worker pushed again in the same session (no new life): the registry refilled.
    await eventually(async () => {
      const svcs = (await ctl(s.broker, ['pushed-services'])).json.services;
      const t = svcs.find((x) => x.service === 'test_service');
      return t && t.at_ms > before.find((x) => x.service === 'test_service').at_ms;
    }, 5000);
    assert.equal((await ctl(s.broker, ['functions', 'test_service'])).json.functions.length, testFns);
    assert.match(s.workers['genapi-test-worker'].stderr, /broker asks for our table again/);
    assert.doesNotMatch(s.workers['genapi-test-worker'].stderr, /registering afresh/);
    assert.doesNotMatch(s.broker.stderr, /registered afresh/);
    // The other service was untouched: still disabled.
    assert.equal((await s.call(SVC, 'get_user', { id: '1' }, '1.0.0')).error, 'Function disabled');

    // Clear it: the disable goes with the flush, the pushed config comes back.
    const c2 = await ctl(s.broker, ['clear', SVC]);
    assert.deepEqual(c2.json, { ok: true, removed: 2, workers_asked: 1 });
    await eventually(async () => (await s.call(SVC, 'get_user', { id: '1' }, '1.0.0')).success === true, 5000);
    assert.equal((await ctl(s.broker, ['get', SVC, 'get_user', '1.0.0'])).json.operator, undefined);

    // Clear without a service: everything, and both workers push again.
    const total = (await ctl(s.broker, ['status'])).json.functions;
    const all = await ctl(s.broker, ['clear']);
    assert.deepEqual(all.json, { ok: true, removed: total, workers_asked: 2 });
    await eventually(async () => (await ctl(s.broker, ['status'])).json.functions === total, 5000);
    assert.equal((await s.call('test_service', 'echo', { value: 7 }, null)).success, true);

    // One clear event per operation: its service (none for all) and how many it removed.
    await eventually(() => s.tail.events('genapi.config.clear').length === 3, 5000);
    const evs = s.tail.events('genapi.config.clear');
    assert.deepEqual(evs.map((e) => [e.metadata.service, e.measurements.count]),
      [['test_service', testFns], [SVC, 2], [undefined, total]]);
    await s.stop();
  } catch (e) {
    s.dump();
    s.kill();
    throw e;
  }
});

test('batch_add and clear are admin actions: refused unless admin_actions lists them', async () => {
  const broker = await startBroker({ args: ['--set', 'admin_actions=status,add_config'] });
  try {
    const b = await ctl(broker, ['add-config', JSON.stringify([{ service: SVC, request_type: 'get_user' }])]);
    assert.deepEqual([b.code, b.json.error], [1, 'admin action not enabled (admin_actions)']);
    const c = await ctl(broker, ['clear']);
    assert.deepEqual([c.code, c.json.error], [1, 'admin action not enabled (admin_actions)']);
  } finally {
    await broker.stop();
  }
});
