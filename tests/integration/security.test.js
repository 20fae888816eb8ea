// SPDX-License-Identifier: MIT
// Nothing past the gateway can be forged: the attacks of an attacker on the broker's network,
// each run against real processes with CURVE on (keys from genapi-ctl keygen), and each refused.
// genapi-test-peer plays the attacker: a raw DEALER, PUB or SUB with or without a key.
'use strict';

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const { spawn } = require('node:child_process');
const path = require('node:path');
const { BIN, ADMIN_TOKEN, startBroker, startWorker, startGateway, connect, join, call, waitForPushes } = require('../support/stack');

function run(prog, args, timeoutMs = 15000) {
  return new Promise((resolve) => {
    execFile(path.join(BIN, prog), args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      resolve({ code: err ? err.code : 0, stdout, stderr });
    });
  });
}

// Keys for a broker, a gateway, an operator and one worker key per service, plus attackers'.
async function makeKeys() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'genapi-curve-'));
  const own = path.join(dir, 'own');
  const peers = path.join(dir, 'peers');
  const rogue = path.join(dir, 'rogue');
  for (const d of [own, peers, rogue]) fs.mkdirSync(d);
  const gen = async (out, role, extra = []) => {
    const r = await run('genapi-ctl', ['keygen', '--role', role, '--out', out, ...extra]);
    assert.equal(r.code, 0, r.stderr);
    return out;
  };
  const keys = {
    dir,
    peers,
    broker: await gen(path.join(own, 'broker'), 'broker'),
    gateway: await gen(path.join(peers, 'gateway'), 'gateway', ['--name', 'gw1']),
    operator: await gen(path.join(peers, 'operator'), 'operator', ['--name', 'ops']),
    user_service: await gen(path.join(peers, 'user_service'), 'worker', ['--services', 'user_service']),
    admin_service: await gen(path.join(peers, 'admin_service'), 'worker', ['--services', 'admin_service']),
    event_service: await gen(path.join(peers, 'event_service'), 'worker', ['--services', 'event_service']),
    // Admitted keys the attacker stole or was given for something else.
    other_worker: await gen(path.join(peers, 'other_worker'), 'worker', ['--services', 'report_service']),
    second_admin: await gen(path.join(peers, 'second_admin'), 'worker',
      ['--name', 'second', '--services', 'admin_service']),
    // A key the broker has never seen.
    stranger: await gen(path.join(rogue, 'stranger'), 'gateway'),
  };
  return keys;
}

async function startCurveStack(keys) {
  const broker = await startBroker({ args: ['--set', `curve_secret_file=${keys.broker}`,
    '--set', `curve_peers_dir=${keys.peers}`] });
  const procs = [broker];
  try {
    const client = (key) => ['--set', `curve_secret_file=${key}`, '--set', `curve_broker_file=${keys.broker}`];
    for (const svc of ['user_service', 'admin_service', 'event_service']) {
      procs.push(await startWorker(svc, broker, { args: client(keys[svc]) }));
    }
    const gateway = await startGateway(broker, { args: client(keys.gateway) });
    procs.push(gateway);
    return { broker, gateway, procs, url: gateway.url,
      stop: async () => { for (const p of procs.reverse()) await p.stop(); } };
  } catch (e) {
    for (const p of procs) p.kill('SIGKILL');
    throw e;
  }
}

// The attacker's forged CALL: delete a user as "mallory" with role viewer.
const FORGED_CALL = JSON.stringify({ id: 1, service: 'admin_service', request_type: 'delete_user',
  args: { user_id: 'u1' }, request_id: 'forged', user_id: 'mallory', roles: ['viewer'] });

function peer(endpoint, args) {
  return run('genapi-test-peer', ['--connect', endpoint, '--listen', '1500', ...args]);
}

test('CURVE: a peer without an admitted key reaches nothing', async () => {
  const keys = await makeKeys();
  const stack = await startCurveStack(keys);
  try {
    const ep = stack.broker.endpoints;
    // A forged gateway, with no key and with a key the broker does not know.
    for (const extra of [[], ['--curve-key', keys.stranger, '--broker-key', keys.broker]]) {
      const r = await peer(ep.gateways, [...extra, '--send', 'CALL', FORGED_CALL]);
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stdout, /RECV/, 'a forged gateway got an answer');
    }
    // A rogue worker.
    const rogue = JSON.stringify({ node: 'rogue@x', service: 'admin_service', config_version: '1',
      functions: [{ service: 'admin_service', request_type: 'delete_user', check_permission: false,
        arg_types: { user_id: 'string' } }] });
    let r = await peer(ep.workers, ['--send', 'REGISTER', rogue]);
    assert.doesNotMatch(r.stdout, /RECV/);
    // An eavesdropper on the stream proxy's output.
    r = await peer(ep.streamsOut, ['--type', 'sub']);
    assert.doesNotMatch(r.stdout, /RECV/);
    // The broker logged the stranger's refusal.
    assert.match(stack.broker.stderr, /curve: .* refused on gateways .*unknown key/);
    // Real clients are served as before.
    const socket = connect(stack.url);
    try {
      const { channel } = await join(socket);
      const ok = await call(channel, { service: 'user_service', request_type: 'get_user', request_id: 'c1',
        args: { user_id: '1' } });
      assert.equal(ok.result.name, 'Alice');
    } finally {
      socket.disconnect();
    }
  } finally {
    await stack.stop();
    fs.rmSync(keys.dir, { recursive: true, force: true });
  }
});

test('CURVE: only a gateway key may send calls with caller identities', async () => {
  const keys = await makeKeys();
  const stack = await startCurveStack(keys);
  try {
    const ep = stack.broker.endpoints;
    // A worker key on the gateway socket is not admitted there at all.
    let r = await peer(ep.gateways, ['--curve-key', keys.user_service, '--broker-key', keys.broker,
      '--send', 'CALL', FORGED_CALL]);
    assert.doesNotMatch(r.stdout, /RECV/);
    assert.match(stack.broker.stderr, /refused on gateways .*role not accepted on this socket/);
    // An operator key is admitted (for admin requests) but may not call.
    r = await peer(ep.gateways, ['--curve-key', keys.operator, '--broker-key', keys.broker,
      '--send', 'CALL', FORGED_CALL]);
    const line = r.stdout.split('\n').find((l) => l.startsWith('RECV RESULT'));
    assert.ok(line, r.stdout);
    const result = JSON.parse(line.slice('RECV RESULT '.length));
    assert.equal(result.ok, false);
    assert.equal(result.error, 'Permission denied');
    // ...and its admin request is answered.
    r = await peer(ep.gateways, ['--curve-key', keys.operator, '--broker-key', keys.broker,
      '--send', 'ADMIN', JSON.stringify({ op: 'status', token: ADMIN_TOKEN })]);
    assert.match(r.stdout, /RECV ADMIN_REPLY \{"ok":true/);
  } finally {
    await stack.stop();
    fs.rmSync(keys.dir, { recursive: true, force: true });
  }
});

test('CURVE: a worker key registers only its own services, and never takes one over', async () => {
  const keys = await makeKeys();
  const stack = await startCurveStack(keys);
  try {
    const ep = stack.broker.endpoints;
    const rogue = JSON.stringify({ node: 'rogue@x', service: 'admin_service', config_version: 'r',
      functions: [{ service: 'admin_service', request_type: 'delete_user', check_permission: false,
        arg_types: { user_id: 'string' } }] });
    // A key for report_service only.
    let r = await peer(ep.workers, ['--curve-key', keys.other_worker, '--broker-key', keys.broker,
      '--send', 'REGISTER', rogue]);
    assert.match(r.stdout, /RECV REGISTERED \{"ok":false,"error":"service admin_service is not allowed for key other_worker/);
    // Another key for admin_service, while the real admin_service holds it.
    r = await peer(ep.workers, ['--curve-key', keys.second_admin, '--broker-key', keys.broker,
      '--send', 'REGISTER', rogue]);
    assert.match(r.stdout, /RECV REGISTERED \{"ok":false,"error":"service admin_service is registered by .* with another key/);
    // The real permission still holds for clients.
    const socket = connect(stack.url);
    try {
      const { channel } = await join(socket);
      const denied = await call(channel, { service: 'admin_service', request_type: 'delete_user',
        request_id: 'c2', args: { user_id: 'u1' } });
      assert.deepEqual([denied.success, denied.error], [false, 'Permission denied']);
    } finally {
      socket.disconnect();
    }
  } finally {
    await stack.stop();
    fs.rmSync(keys.dir, { recursive: true, force: true });
  }
});

test('without CURVE the broker listens on loopback only, and reserved names cannot be registered', async () => {
  const broker = await startBroker();
  try {
    for (const ep of Object.values(broker.endpoints)) assert.match(ep, /^tcp:\/\/127\.0\.0\.1:\d+$/);
    const reserved = JSON.stringify({ node: 'r@x', service: 'chat_service', config_version: '1',
      functions: [{ service: 'chat_service', request_type: 'send_message' },
        { service: 'chat_service', request_type: 'history' }] });
    const r = await peer(broker.endpoints.workers, ['--send', 'REGISTER', reserved]);
    const line = r.stdout.split('\n').find((l) => l.startsWith('RECV REGISTERED'));
    const reply = JSON.parse(line.slice('RECV REGISTERED '.length));
    assert.equal(reply.ok, true);
    assert.deepEqual(reply.failed, [{ function: 'send_message', reason: 'reserved name: provided by genapi itself' }]);
  } finally {
    await broker.stop();
  }
});

test('the allowlist decides which functions workers may register', async () => {
  const broker = await startBroker({ args: ['--set', 'allowlist=user_service,report_service.generate_report'] });
  try {
    const reg = JSON.stringify({ node: 'r@x', service: 'report_service', config_version: '1',
      functions: [{ service: 'report_service', request_type: 'generate_report' },
        { service: 'report_service', request_type: 'purge_reports' }] });
    const r = await peer(broker.endpoints.workers, ['--send', 'REGISTER', reg]);
    const line = r.stdout.split('\n').find((l) => l.startsWith('RECV REGISTERED'));
    const reply = JSON.parse(line.slice('RECV REGISTERED '.length));
    assert.deepEqual(reply.failed, [{ function: 'purge_reports', reason: "not in the broker's allowlist" }]);
  } finally {
    await broker.stop();
  }
});

test('a worker checks every call against its own declaration, whoever sent it', async () => {
  // Without CURVE, on loopback: a local process can play a gateway. The forged call bypasses the
  // gateway's argument checks; the worker must refuse it rather than run (and crash) the handler.
  const broker = await startBroker();
  const worker = await startWorker('user_service', broker);
  try {
    const forged = (id, args) => JSON.stringify({ id, service: 'user_service', request_type: 'get_user',
      version: '1.0.0', args, request_id: `f${id}` });
    const r = await peer(broker.endpoints.gateways, ['--send', 'HELLO', '{"name":"forger"}',
      '--send', 'CALL', forged(1, {}),
      '--send', 'CALL', forged(2, { user_id: 1 }),
      '--send', 'CALL', forged(3, { user_id: '1', admin: true }),
      '--send', 'CALL', forged(4, { user_id: '2' })]);
    const results = r.stdout.split('\n').filter((l) => l.startsWith('RECV RESULT'))
      .map((l) => JSON.parse(l.slice('RECV RESULT '.length)));
    const byId = Object.fromEntries(results.map((x) => [x.id, x]));
    assert.deepEqual([byId[1].ok, byId[1].error], [false, 'Missing required argument: user_id']);
    assert.deepEqual([byId[2].ok, byId[2].error], [false, 'Invalid type for argument user_id: expected string']);
    assert.deepEqual([byId[3].ok, byId[3].error], [false, 'Unknown argument: admin']);
    assert.equal(byId[4].ok, true);
    assert.equal(byId[4].result.name, 'Bob');
    assert.equal(worker.exited, null, worker.stderr);
  } finally {
    await worker.stop();
    await broker.stop();
  }
});

test('CURVE: stream chunks reach only their gateway, and only from the worker the call went to', async () => {
  const keys = await makeKeys();
  const stack = await startCurveStack(keys);
  const attackers = [];
  try {
    const ep = stack.broker.endpoints;
    // Eavesdroppers: no key, and an admitted worker key (workers may not subscribe).
    for (const extra of [[], ['--curve-key', keys.user_service, '--broker-key', keys.broker]]) {
      attackers.push(spawnPeer(ep.streamsOut, ['--type', 'sub', '--listen', '6000', ...extra]));
    }
    const socket = connect(stack.url);
    const { channel } = await join(socket);
    const ack = await call(channel, { service: 'event_service', request_type: 'stream_events', request_id: 's1' });
    assert.equal(ack.kind, 'ack');
    // Forgers: an admitted worker key of another service, and no key, publishing a `last` chunk
    // for every plausible call id on this gateway's topics.
    const gwName = `gateway@${os.hostname()}:${stack.gateway.child.pid}`.replace(/\./g, '_');
    const forged = [];
    for (let gwCall = 1; gwCall <= 4; gwCall++) {
      for (let brokerCall = 1; brokerCall <= 4; brokerCall++) {
        forged.push({ topic: `s.${gwName}.${gwCall}`, body: { call: brokerCall, seq: 2, kind: 'last', data: 'forged' } });
      }
    }
    for (const extra of [['--curve-key', keys.user_service, '--broker-key', keys.broker], []]) {
      for (const f of forged) {
        await run('genapi-test-peer', ['--connect', ep.streamsIn, '--type', 'pub', '--topic', f.topic,
          '--listen', '0', ...extra, '--send', 'STREAM', JSON.stringify(f.body)]);
      }
    }
    const pushes = await waitForPushes(channel, (p) => p.some((x) => x.request_id === 's1' && !x.has_more &&
      x.kind !== 'ack'), 15000);
    const mine = pushes.filter((x) => x.request_id === 's1' && x.kind !== 'ack');
    assert.deepEqual(mine.map((x) => x.kind), [...Array(10).fill('chunk'), 'last']);
    assert.ok(mine.every((x) => x.result !== 'forged'));
    assert.deepEqual(mine[10].result, { event: 'done', total: 10 });
    assert.match(stack.broker.stderr, /stream message for call \d+ refused: not published by the worker the call was routed to/);
    for (const a of attackers) {
      const out = await a.done;
      assert.doesNotMatch(out, /RECV/, 'an eavesdropper read a chunk');
    }
    socket.disconnect();
  } finally {
    for (const a of attackers) a.child.kill('SIGKILL');
    await stack.stop();
    fs.rmSync(keys.dir, { recursive: true, force: true });
  }
});

function spawnPeer(endpoint, args) {
  const child = spawn(path.join(BIN, 'genapi-test-peer'), ['--connect', endpoint, ...args]);
  let out = '';
  child.stdout.on('data', (d) => { out += d.toString(); });
  const done = new Promise((resolve) => child.on('exit', () => resolve(out)));
  return { child, done };
}
