// SPDX-License-Identifier: MIT
// Nodes resolvers with three real worker processes (nodes n1, n2, n3; docs/protocol.md, "Node
// selection"): where_resolved names the resolver test_service.resolve_n2, whose answer is
// ["n2"], so every call runs on n2, whichever worker the broker asked; the first calls wait
// for the answer rather than fail. A resolver that answers with an error, answers something
// that is not a list of node names, or is not registered gives Service unavailable, with the
// reason in the broker's log; so does one that answers too late, after the calls waited.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { startBroker, startWorker, startGateway, connect, join, call, eventually } = require('../support/stack');

async function withNodes(fn) {
  const procs = [];
  let socket = null;
  try {
    const broker = await startBroker({ args: ['--set', 'resolver_cache_ms=300'] });
    procs.push(broker);
    for (const n of ['n1', 'n2', 'n3']) {
      procs.push(await startWorker('genapi-test-worker', broker, { args: ['--set', `node=${n}`] }));
    }
    const gateway = await startGateway(broker);
    procs.push(gateway);
    socket = connect(gateway.url);
    const { channel } = await join(socket);
    await fn({ broker, channel });
  } catch (e) {
    for (const p of procs) console.error(`----- ${p.name} stderr -----\n${p.stderr.slice(-4000)}`);
    throw e;
  } finally {
    if (socket) socket.disconnect();
    const errors = [];
    for (const p of procs.slice().reverse()) {
      try { await p.stop(); } catch (e) { errors.push(e); }
    }
    if (errors.length) throw errors[0];
  }
}

let seq = 0;
const run = (channel, fn) => call(channel, { service: 'test_service', request_type: fn, request_id: `r${++seq}` });

test('a resolver naming n2 only: every call runs on n2, the first ones waiting for its answer', async () => {
  await withNodes(async ({ channel }) => {
    // Sent together before any answer is cached: they wait for it, none fails.
    const first = await Promise.all(Array.from({ length: 10 }, () => run(channel, 'where_resolved')));
    for (const r of first) assert.equal(r.success, true, JSON.stringify(r));
    assert.deepEqual([...new Set(first.map((r) => r.result.node))], ['n2']);
    // Across several cache lifetimes (300 ms), and for round_robin too.
    for (let round = 0; round < 4; round++) {
      for (const fn of ['where_resolved', 'where_rr_resolved']) {
        const rs = await Promise.all(Array.from({ length: 6 }, () => run(channel, fn)));
        for (const r of rs) assert.equal(r.success, true, JSON.stringify(r));
        assert.deepEqual([...new Set(rs.map((r) => r.result.node))], ['n2']);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    // Without a resolver the same workers spread the calls.
    const spread = new Set();
    for (let i = 0; i < 30 && spread.size < 2; i++) spread.add((await run(channel, 'where_random')).result.node);
    assert.ok(spread.size >= 2, 'where_random stayed on one node');
  });
});

test('a failing resolver: Service unavailable, and the broker says why', async () => {
  await withNodes(async ({ broker, channel }) => {
    const cases = [
      ['where_failing_resolver', 'nodes resolver test_service.fail failed: it answered with an error (boom)'],
      ['where_bad_resolver', 'nodes resolver test_service.resolve_badly failed: its answer is not a list of node names'],
      ['where_missing_resolver', 'nodes resolver test_service.nope failed: no such function registered'],
      ['where_slow_resolver', 'nodes resolver test_service.resolve_slowly failed: no answer within its timeout'],
    ];
    for (const [fn, log] of cases) {
      const r = await run(channel, fn);
      assert.deepEqual([r.success, r.error, r.can_retry], [false, 'Service unavailable', true], `${fn}: ${JSON.stringify(r)}`);
      // The log line may reach us just after the answer.
      await eventually(() => broker.stderr.includes(log), 5000).catch(() => {
        assert.fail(`${fn}: no "${log}" in\n${broker.stderr.slice(-3000)}`);
      });
    }
    // The good one still works beside them.
    const ok = await run(channel, 'where_resolved');
    assert.equal(ok.result.node, 'n2');
  });
});
