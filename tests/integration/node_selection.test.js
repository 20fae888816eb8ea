// SPDX-License-Identifier: MIT
// Node selection with three real worker processes (nodes n1, n2, n3; each answer names the node
// that served it): random spreads, round_robin cycles per function, hash and hash:ARG are stable
// (and hash:ARG keys stay put when an unrelated worker leaves), least_loaded avoids a busy
// worker, and sticky keeps its keys on their node when others join, when their worker restarts,
// and across a broker restart with a state file. A corrupt state file stops the broker's start.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const {
  Proc, startBroker, startWorker, startGateway, connect, join, call, eventually,
} = require('../support/stack');

const NODES = ['n1', 'n2', 'n3'];

function startNode(broker, node) {
  return startWorker('genapi-test-worker', broker, { args: ['--set', `node=${node}`] });
}

let seq = 0;
async function where(channel, fn, args = {}, requestId = null) {
  const r = await call(channel, {
    service: 'test_service', request_type: fn, request_id: requestId || `r${++seq}`, args,
  });
  assert.equal(r.success, true, JSON.stringify(r));
  return r.result.node;
}

// Resolves once `fn` (a non-sticky mode) has been served by every node in `nodes`.
async function waitForNodes(channel, nodes, fn = 'where_random') {
  await eventually(async () => {
    const seen = new Set();
    for (let i = 0; i < 30; i++) seen.add(await where(channel, fn).catch(() => null));
    return nodes.every((n) => seen.has(n));
  }, 20000, 200);
}

async function withStack(fn, { brokerArgs = [], nodes = NODES } = {}) {
  const procs = [];
  const sockets = [];
  const ctx = { procs, sockets };
  try {
    ctx.broker = await startBroker({ args: brokerArgs });
    procs.push(ctx.broker);
    ctx.workers = {};
    for (const n of nodes) {
      ctx.workers[n] = await startNode(ctx.broker, n);
      procs.push(ctx.workers[n]);
    }
    ctx.gateway = await startGateway(ctx.broker);
    procs.push(ctx.gateway);
    const socket = connect(ctx.gateway.url);
    sockets.push(socket);
    ctx.channel = (await join(socket)).channel;
    await waitForNodes(ctx.channel, nodes);
    await fn(ctx);
  } catch (e) {
    for (const p of procs) console.error(`----- ${p.name} stderr -----\n${p.stderr.slice(-4000)}`);
    throw e;
  } finally {
    for (const s of sockets) s.disconnect();
    const errors = [];
    for (const p of procs.slice().reverse()) {
      try { await p.stop(); } catch (e) { errors.push(e); }
    }
    if (errors.length) throw errors[0];
  }
}

test('node selection across three workers: random, round_robin, hash, hash:ARG, least_loaded', async () => {
  await withStack(async (ctx) => {
    const ch = ctx.channel;

    // random spreads over every node.
    const random = new Set();
    for (let i = 0; i < 60; i++) random.add(await where(ch, 'where_random'));
    assert.deepEqual([...random].sort(), NODES);

    // round_robin cycles n1 -> n2 -> n3 (node-name order), one counter per function: calls of
    // where_rr2 in between do not move where_rr's place in its cycle.
    const rr = [];
    for (let i = 0; i < 9; i++) {
      rr.push(await where(ch, 'where_rr'));
      if (i % 2 === 0) await where(ch, 'where_rr2');
    }
    const start = NODES.indexOf(rr[0]);
    assert.deepEqual(rr, rr.map((_, i) => NODES[(start + i) % 3]));
    const rr2 = [];
    for (let i = 0; i < 3; i++) rr2.push(await where(ch, 'where_rr2'));
    assert.deepEqual([...rr2].sort(), NODES);

    // hash: one request id, one node; many request ids spread.
    const hashSeen = new Set();
    for (let i = 0; i < 12; i++) {
      const id = `hash-${i}`;
      const first = await where(ch, 'where_hash', {}, id);
      for (let k = 0; k < 3; k++) assert.equal(await where(ch, 'where_hash', {}, id), first);
      hashSeen.add(first);
    }
    assert.ok(hashSeen.size >= 2, `hash used ${[...hashSeen]}`);

    // hash:ARG: one key value, one node, whatever the request id; keys spread.
    const byKey = {};
    for (let i = 0; i < 12; i++) {
      const key = `user-${i}`;
      byKey[key] = await where(ch, 'where_hash_arg', { key });
      for (let k = 0; k < 3; k++) assert.equal(await where(ch, 'where_hash_arg', { key }), byKey[key]);
    }
    assert.ok(new Set(Object.values(byKey)).size >= 2, JSON.stringify(byKey));

    // least_loaded: n1 holds three slow calls; quick calls meanwhile go to n2 and n3.
    const held = [1, 2, 3].map((i) => call(ch, {
      service: 'test_service', request_type: 'hold_n1', request_id: `hold${i}`, args: { ms: 3000 },
    }, 20000));
    await new Promise((r) => setTimeout(r, 500)); // the holds reach the broker first
    const least = [];
    for (let i = 0; i < 10; i++) least.push(await where(ch, 'where_least'));
    assert.ok(!least.includes('n1'), `least_loaded used the busy n1: ${least}`);
    for (const r of await Promise.all(held)) assert.equal(r.result.node, 'n1');

    // hash:ARG keys stay put when an unrelated worker leaves: n3 stops; keys not on n3 keep
    // their node, keys on n3 move to a live one.
    await ctx.workers.n3.stop();
    await waitForNodes(ch, ['n1', 'n2']);
    for (const [key, node] of Object.entries(byKey)) {
      const now = await where(ch, 'where_hash_arg', { key });
      if (node !== 'n3') assert.equal(now, node, `${key} moved from ${node} to ${now}`);
      else assert.notEqual(now, 'n3');
    }
  });
});

test('sticky: keys stay on their node when others join, when it restarts, and across a broker restart with a state file', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'genapi-sticky-'));
  const stateFile = path.join(dir, 'sticky.json');
  const keys = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'];
  const sticky = async (ch) => {
    const got = {};
    for (const key of keys) got[key] = await where(ch, 'where_sticky', { key });
    return got;
  };
  const allOn = (node) => Object.fromEntries(keys.map((k) => [k, node]));
  try {
    await withStack(async (ctx) => {
      let ch = ctx.channel;
      // Only n1 is up: every key maps to it.
      assert.deepEqual(await sticky(ch), allOn('n1'));
      // n2 and n3 join: the keys stay (a plain hash would move about two thirds of them).
      for (const n of ['n2', 'n3']) {
        ctx.workers[n] = await startNode(ctx.broker, n);
        ctx.procs.push(ctx.workers[n]);
      }
      await waitForNodes(ch, NODES, 'where_rr');
      assert.deepEqual(await sticky(ch), allOn('n1'));

      // n1 restarts (a new process, a new routing id, the same node name): the keys follow it.
      await ctx.workers.n1.stop();
      ctx.procs.splice(ctx.procs.indexOf(ctx.workers.n1), 1);
      ctx.workers.n1 = await startNode(ctx.broker, 'n1');
      ctx.procs.push(ctx.workers.n1);
      await waitForNodes(ch, NODES, 'where_rr');
      assert.deepEqual(await sticky(ch), allOn('n1'));

      // The broker restarts (SIGTERM writes the state file; the new one reads it).
      const endpoints = ctx.broker.endpoints;
      await ctx.broker.stop();
      ctx.procs.splice(ctx.procs.indexOf(ctx.broker), 1);
      const saved = fs.readFileSync(stateFile, 'utf8');
      assert.equal(JSON.parse(saved).entries.length, keys.length);
      assert.ok(!saved.includes('alice'), 'the state file holds hashes, not argument values');
      ctx.broker = await startBroker({ endpoints, args: ['--set', `state_file=${stateFile}`] });
      ctx.procs.unshift(ctx.broker);
      // Every worker registered again (round_robin reaches all three) before any sticky call.
      await waitForNodes(ch, NODES, 'where_rr');
      assert.deepEqual(await sticky(ch), allOn('n1'));
    }, { nodes: ['n1'], brokerArgs: ['--set', `state_file=${stateFile}`] });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a corrupt or unreadable state file stops the broker at start with a reason', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'genapi-sticky-'));
  try {
    const bad = path.join(dir, 'bad.json');
    fs.writeFileSync(bad, '{"genapi_sticky":1,"entries":[{"key":"nothex","node":"n1","idle_ms":0}]}');
    for (const file of [bad, dir]) {
      const p = new Proc('genapi-broker', [
        '--set', 'worker_endpoint=tcp://127.0.0.1:*', '--set', 'gateway_endpoint=tcp://127.0.0.1:*',
        '--set', 'stream_in_endpoint=tcp://127.0.0.1:*', '--set', 'stream_out_endpoint=tcp://127.0.0.1:*',
        '--set', `state_file=${file}`,
      ]);
      const exit = await p.exitPromise;
      assert.notEqual(exit.code, 0);
      assert.ok(!p.lines.some((l) => l.startsWith('READY')), 'the broker must not start');
      assert.match(p.stderr, new RegExp(`state_file: .*${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
    }
    // The file is left as it was, for the operator to look at.
    assert.match(fs.readFileSync(bad, 'utf8'), /nothex/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
