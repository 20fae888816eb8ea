// SPDX-License-Identifier: MIT
// Function versions and config pushes through real processes (docs/operations.md, "Versions";
// docs/protocol.md, "Registration"): the walkthrough's section 8 calls against
// versioned_user_service; an operator's disable, enable and delete (genapi-ctl), which reach the
// gateway and survive the worker registering again; the no-version rule; the admin actions
// gate; a wrong push token; verify; the same config_version skipped unless forced; a bad config
// listed with its reason.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { execFile, spawn } = require('node:child_process');
const { BIN, Proc, startBroker, startWorker, startGateway, connect, join, call, eventually } = require('../support/stack');

const ALL_ACTIONS = 'status,functions,stop_stream,versions,get,get_latest,disable,enable,delete,add_config,verify';
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

// One REGISTER pushed as any worker could (genapi-test-register); resolves with REGISTERED.
function register(broker, body) {
  return new Promise((resolve, reject) => {
    const p = spawn(path.join(BIN, 'genapi-test-register'), [broker.endpoints.workers, JSON.stringify(body)]);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(stdout)) : reject(new Error(`exit ${code}: ${stderr}`))));
  });
}

async function versionsStack(workerArgs = []) {
  const broker = await startBroker({ args: ['--set', `admin_actions=${ALL_ACTIONS}`] });
  const procs = [broker];
  try {
    const worker = await startWorker(SVC, broker, { args: workerArgs });
    procs.push(worker);
    const gateway = await startGateway(broker);
    procs.push(gateway);
    const socket = connect(gateway.url);
    const { channel } = await join(socket);
    let n = 0;
    const get = (version, args) => call(channel, {
      service: SVC, request_type: 'get_user', request_id: `r${++n}`, ...(version ? { version } : {}), args,
    });
    return {
      broker, gateway, procs, socket, get, worker,
      stop: async () => {
        socket.disconnect();
        const errors = [];
        for (const p of procs.slice().reverse()) {
          try { await p.stop(); } catch (e) { errors.push(e); }
        }
        if (errors.length) throw errors[0];
      },
      dump: () => { for (const p of procs) console.error(`----- ${p.name} -----\n${p.stderr}`); },
    };
  } catch (e) {
    for (const p of procs) p.kill('SIGKILL');
    throw e;
  }
}

// Kills the worker and starts it again (a new process, registering afresh).
async function restartWorker(s, args = []) {
  await s.worker.kill('SIGKILL');
  s.procs.splice(s.procs.indexOf(s.worker), 1);
  s.worker = await startWorker(SVC, s.broker, { args });
  s.procs.push(s.worker);
  // The broker has the new process registered once status lists exactly one live worker.
  await eventually(async () => {
    const st = await ctl(s.broker, ['status']);
    return st.json && st.json.workers.length === 1 && st.json.workers[0].service === SVC;
  }, 10000);
}

test("the walkthrough's section 8 calls against versioned_user_service", async () => {
  const s = await versionsStack();
  try {
    // The request as written (version 2.0.0, id "123", two fields).
    const v2 = await s.get('2.0.0', { id: '123', fields: ['name', 'email'] });
    assert.deepEqual([v2.success, v2.result], [true, { name: 'Carol', email: 'carol@example.com' }]);
    // Version 1.0.0 returns every field.
    const v1 = await s.get('1.0.0', { id: '1' });
    assert.deepEqual(v1.result, { id: '1', name: 'Alice', email: 'alice@example.com' });
    // Each version checks its own arguments: 1.0.0 has no `fields`, 2.0.0 caps it at 10.
    const extra = await s.get('1.0.0', { id: '1', fields: ['name'] });
    assert.equal(extra.success, false);
    assert.match(extra.error, /fields/);
    const many = await s.get('2.0.0', { id: '1', fields: Array(11).fill('name') });
    assert.equal(many.success, false);
    assert.match(many.error, /fields/);
    // Without a version: no unversioned config, so the highest, 2.0.0.
    const latest = await s.get(null, { id: '1', fields: ['name'] });
    assert.deepEqual(latest.result, { name: 'Alice' });
    // "0.0.0" means no version.
    const zero = await s.get('0.0.0', { id: '2', fields: ['email'] });
    assert.deepEqual(zero.result, { email: 'bob@example.com' });
    // A version nobody registered.
    const absent = await s.get('3.0.0', { id: '1' });
    assert.deepEqual([absent.success, absent.error, absent.can_retry], [false, 'Unknown function', false]);
    // genapi-ctl: get, get latest, versions.
    const got = await ctl(s.broker, ['get', SVC, 'get_user', '1.0.0']);
    assert.equal(got.code, 0);
    assert.deepEqual([got.json.config.version, got.json.config.arg_types, got.json.enabled], ['1.0.0', { id: 'string' }, true]);
    const newest = await ctl(s.broker, ['get', SVC, 'get_user']);
    assert.equal(newest.json.config.version, '2.0.0');
    const list = await ctl(s.broker, ['versions']);
    assert.deepEqual(list.json.versions, {
      [SVC]: { get_user: [{ version: '1.0.0', enabled: true }, { version: '2.0.0', enabled: true }] },
    });
  } catch (e) {
    s.dump();
    throw e;
  } finally {
    await s.stop();
  }
});

test('disable and enable a version: the gateway follows, and the disable survives a worker restart', async () => {
  const s = await versionsStack();
  try {
    const dis = await ctl(s.broker, ['disable', SVC, 'get_user', '2.0.0']);
    assert.equal(dis.code, 0, dis.stderr);
    assert.deepEqual(dis.json, { ok: true, changed: 1 });
    // The gateway hears of it: a call naming 2.0.0 is refused there ...
    const refused = await eventually(async () => {
      const r = await s.get('2.0.0', { id: '1', fields: ['name'] });
      return r.error === 'Function disabled' && r;
    }, 5000);
    assert.equal(refused.can_retry, false);
    // ... and a call without a version resolves past it, to 1.0.0.
    const fallback = await s.get(null, { id: '1' });
    assert.deepEqual(fallback.result, { id: '1', name: 'Alice', email: 'alice@example.com' });
    const list = await ctl(s.broker, ['versions', SVC]);
    assert.deepEqual(list.json.versions[SVC].get_user,
      [{ version: '1.0.0', enabled: true }, { version: '2.0.0', enabled: false, operator: 'disabled' }]);

    // The worker dies and comes back, pushing 2.0.0 enabled: the operator's disable holds.
    await restartWorker(s);
    const still = await s.get('2.0.0', { id: '1', fields: ['name'] });
    assert.equal(still.error, 'Function disabled');
    assert.deepEqual((await s.get(null, { id: '2' })).result, { id: '2', name: 'Bob', email: 'bob@example.com' });
    // A restart under a new config_version (a new release) does not lift it either.
    await restartWorker(s, ['--set', 'config_version=release-2']);
    assert.equal((await s.get('2.0.0', { id: '1', fields: ['name'] })).error, 'Function disabled');

    const en = await ctl(s.broker, ['enable', SVC, 'get_user', '2.0.0']);
    assert.equal(en.code, 0, en.stderr);
    const back = await eventually(async () => {
      const r = await s.get(null, { id: '1', fields: ['email'] });
      return r.success && r;
    }, 5000);
    assert.deepEqual(back.result, { email: 'alice@example.com' });
    assert.equal((await s.get('2.0.0', { id: '1', fields: ['name'] })).success, true);
  } catch (e) {
    s.dump();
    throw e;
  } finally {
    await s.stop();
  }
});

test('delete a version: unknown everywhere, still deleted after the worker registers again, back on enable', async () => {
  const s = await versionsStack();
  try {
    const del = await ctl(s.broker, ['delete', SVC, 'get_user', '1.0.0']);
    assert.equal(del.code, 0, del.stderr);
    const gone = await eventually(async () => {
      const r = await s.get('1.0.0', { id: '1' });
      return r.error === 'Unknown function' && r;
    }, 5000);
    assert.equal(gone.can_retry, false);
    // Deleting it twice says why it is not there.
    const again = await ctl(s.broker, ['delete', SVC, 'get_user', '1.0.0']);
    assert.equal(again.code, 1);
    assert.match(again.json.error, /deleted by an operator/);
    // Disable the other one too: nothing is left for a version-less call.
    assert.equal((await ctl(s.broker, ['disable', SVC, 'get_user', '2.0.0'])).code, 0);
    const none = await eventually(async () => {
      const r = await s.get(null, { id: '1' });
      return r.error === 'Unknown function' && r;
    }, 5000);
    assert.equal(none.success, false);
    const latest = await ctl(s.broker, ['get', SVC, 'get_user']);
    assert.equal(latest.code, 1);
    assert.match(latest.json.error, /no enabled version/);

    await restartWorker(s);
    assert.equal((await s.get('1.0.0', { id: '1' })).error, 'Unknown function');
    // A new release that still ships 1.0.0 does not bring it back either.
    await restartWorker(s, ['--set', 'config_version=release-2']);
    assert.equal((await s.get('1.0.0', { id: '1' })).error, 'Unknown function');
    const list = await ctl(s.broker, ['versions', SVC]);
    assert.deepEqual(list.json.versions[SVC].get_user, [
      { version: '1.0.0', enabled: false, operator: 'deleted' },
      { version: '2.0.0', enabled: false, operator: 'disabled' },
    ]);

    assert.equal((await ctl(s.broker, ['enable', SVC, 'get_user', '1.0.0'])).code, 0);
    const back = await eventually(async () => {
      const r = await s.get('1.0.0', { id: '2' });
      return r.success && r;
    }, 5000);
    assert.deepEqual(back.result, { id: '2', name: 'Bob', email: 'bob@example.com' });
    // With 2.0.0 still disabled, a version-less call gets 1.0.0.
    assert.deepEqual((await s.get(null, { id: '1' })).result, { id: '1', name: 'Alice', email: 'alice@example.com' });
  } catch (e) {
    s.dump();
    throw e;
  } finally {
    await s.stop();
  }
});

test('add-config: an operator config replaces the pushed one and reaches the gateway; bad ones are refused', async () => {
  const s = await versionsStack();
  const fs = require('node:fs');
  const os = require('node:os');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'genapi-versions-'));
  try {
    // 1.0.0 with `id` capped at 2 bytes (the worker library still checks its own declaration
    // too: an operator's config narrows what a handler gets, it cannot widen it).
    assert.equal((await s.get('1.0.0', { id: '123' })).result.name, 'Carol');
    const file = path.join(dir, 'get_user_v1.json');
    fs.writeFileSync(file, JSON.stringify({
      service: SVC, request_type: 'get_user', version: '1.0.0',
      arg_types: { id: { type: 'string', max_bytes: 2 } },
    }));
    const added = await ctl(s.broker, ['add-config', file]);
    assert.equal(added.code, 0, added.stderr);
    const narrowed = await eventually(async () => {
      const r = await s.get('1.0.0', { id: '123' });
      return r.success === false && r;
    }, 5000);
    assert.match(narrowed.error, /id/);
    assert.notEqual(narrowed.error, 'not_found');
    assert.equal((await s.get('1.0.0', { id: '1' })).success, true);
    const got = await ctl(s.broker, ['get', SVC, 'get_user', '1.0.0']);
    assert.equal(got.json.operator, 'added');
    // It survives the worker registering again, under a new config_version.
    await restartWorker(s, ['--set', 'config_version=another']);
    const still = await s.get('1.0.0', { id: '123' });
    assert.deepEqual([still.success, still.error], [false, narrowed.error]);
    // Refused: a version no worker offers, a config breaking a rule, not JSON.
    const v3 = await ctl(s.broker, ['add-config', JSON.stringify({ service: SVC, request_type: 'get_user', version: '3.0.0' })]);
    assert.equal(v3.code, 1);
    assert.match(v3.json.error, /no registered worker of versioned_user_service offers get_user 3\.0\.0/);
    const bad = await ctl(s.broker, ['add-config', JSON.stringify({ service: SVC, request_type: 'get_user', version: '1.0.0', timeout: 1 })]);
    assert.equal(bad.code, 1);
    assert.match(bad.json.error, /^timeout: /);
    const notJson = await ctl(s.broker, ['add-config', '{nope']);
    assert.equal(notJson.code, 2);
    assert.match(notJson.stderr, /not a JSON config map/);
  } catch (e) {
    s.dump();
    throw e;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    await s.stop();
  }
});

test('the versions operations are admin actions: off unless admin_actions lists them', async () => {
  const broker = await startBroker(); // the tests' default: status, functions, stop_stream
  const procs = [broker];
  try {
    procs.push(await startWorker(SVC, broker));
    for (const args of [['versions'], ['disable', SVC, 'get_user', '1.0.0'], ['verify', SVC, '1'],
      ['get', SVC, 'get_user']]) {
      const r = await ctl(broker, args);
      assert.equal(r.code, 1, args.join(' '));
      assert.equal(r.json.error, 'admin action not enabled (admin_actions)');
    }
    const fns = await ctl(broker, ['functions', SVC]);
    assert.equal(fns.json.functions.every((c) => !c.disabled), true);
  } finally {
    for (const p of procs.reverse()) await p.stop();
  }
});

test('push: a wrong push token is refused, the right one accepted', async () => {
  const broker = await startBroker({ args: ['--set', 'push_token=push-secret-42', '--set', `admin_actions=${ALL_ACTIONS}`] });
  let wrong = null;
  const procs = [broker];
  try {
    wrong = new Proc(SVC, ['--set', `broker=${broker.endpoints.workers}`, '--set', 'heartbeat_ms=200',
      '--set', 'push_token=push-secret-4']);
    await eventually(() => /refused the function table: invalid push token/.test(wrong.stderr), 10000);
    assert.equal(wrong.lines.some((l) => l.startsWith('READY')), false);
    const st = await ctl(broker, ['status']);
    assert.equal(st.json.workers.length, 0);
    assert.equal((await ctl(broker, ['verify', SVC, '1'])).json.result, 'not_found');
    procs.push(await startWorker(SVC, broker, { args: ['--set', 'push_token=push-secret-42'] }));
    assert.equal((await ctl(broker, ['status'])).json.workers.length, 1);
  } finally {
    if (wrong) await wrong.stop();
    for (const p of procs.reverse()) await p.stop();
  }
});

test('push: verify answers matched, mismatch with the stored version, or not found', async () => {
  const broker = await startBroker({ args: ['--set', `admin_actions=${ALL_ACTIONS}`] });
  const procs = [broker];
  try {
    procs.push(await startWorker(SVC, broker, { args: ['--set', 'config_version=1.0.0'] }));
    assert.deepEqual((await ctl(broker, ['verify', SVC, '1.0.0'])).json, { ok: true, result: 'matched' });
    assert.deepEqual((await ctl(broker, ['verify', SVC, '2.0.0'])).json,
      { ok: true, result: 'mismatch', stored_version: '1.0.0' });
    assert.deepEqual((await ctl(broker, ['verify', 'user_service', '1.0.0'])).json, { ok: true, result: 'not_found' });
    const usage = await ctl(broker, ['verify', SVC]);
    assert.equal(usage.code, 2);
  } finally {
    for (const p of procs.reverse()) await p.stop();
  }
});

test('push: the same config_version is skipped unless forced; a bad config is listed with its reason', async () => {
  const broker = await startBroker({ args: ['--set', `admin_actions=${ALL_ACTIONS}`] });
  const procs = [broker];
  const echoTimeout = async () => {
    const fns = await ctl(broker, ['functions', 'test_service']);
    const echo = fns.json.functions.find((c) => c.request_type === 'echo');
    return echo ? (echo.timeout === undefined ? 5000 : echo.timeout) : null;
  };
  try {
    procs.push(await startWorker('genapi-test-worker', broker, { args: ['--set', 'config_version=7'] }));
    assert.equal(await echoTimeout(), 5000);
    // A second worker of the same version, whose table lacks echo: skipped, yet a live worker.
    const second = await startWorker('genapi-test-worker', broker,
      { args: ['--set', 'config_version=7', '--drop', 'echo', '--set', 'node=second'] });
    procs.push(second);
    await eventually(() => /already had config version 7/.test(second.stderr), 5000);
    const st = await ctl(broker, ['status']);
    assert.deepEqual(st.json.workers.map((w) => w.node).sort().includes('second'), true);
    assert.equal(st.json.workers.length, 2);

    const body = (force) => ({
      node: 'pusher@test', service: 'test_service', config_version: '7', ...(force ? { force: true } : {}),
      functions: [
        { service: 'test_service', request_type: 'echo', arg_types: { value: 'any' }, timeout: 9000 },
        { service: 'test_service', request_type: 'broken', timeout: 1 },
      ],
    });
    const skipped = await register(broker, body(false));
    assert.deepEqual([skipped.ok, skipped.skipped, skipped.failed], [true, true, []]);
    assert.equal(await echoTimeout(), 5000);
    assert.equal((await ctl(broker, ['status'])).json.failed_configs.length, 0);

    const forced = await register(broker, body(true));
    assert.deepEqual([forced.ok, forced.skipped], [true, false]);
    assert.deepEqual(forced.failed, [{ function: 'broken', reason: 'timeout: must be 100..300000 ms' }]);
    assert.equal(await echoTimeout(), 9000);
    const failed = (await ctl(broker, ['status'])).json.failed_configs;
    assert.deepEqual(failed.map(({ service, function: f, reason }) => ({ service, function: f, reason })),
      [{ service: 'test_service', function: 'broken', reason: 'timeout: must be 100..300000 ms' }]);
  } finally {
    for (const p of procs.reverse()) await p.stop();
  }
});
