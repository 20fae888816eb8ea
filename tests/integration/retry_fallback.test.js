// SPDX-License-Identifier: MIT
// Retry and fallback across real worker processes (docs/protocol.md, "Retry and fallback"):
// three test workers (nodes n1, n2, n3) print "EXEC <request id> <ms>" each time their tally
// handler runs, so the test counts executions per node. Fallback when a worker is killed
// mid-call; exact attempt counts for retry N, all_nodes:N and same_node:N; an ordinary error
// returned at once; attempts spaced at least by the backoff; the timeout bounding all
// attempts together.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { startBroker, startWorker, startGateway, connect, join, call, eventually } = require('../support/stack');

async function startNodes(names) {
  const procs = [];
  const broker = await startBroker();
  procs.push(broker);
  const workers = {};
  for (const node of names) {
    const w = await startWorker('genapi-test-worker', broker, { args: ['--set', `node=${node}`, '--set', 'threads=2'] });
    workers[node] = w;
    procs.push(w);
  }
  const gateway = await startGateway(broker);
  procs.push(gateway);
  const socket = connect(gateway.url);
  const { channel } = await join(socket);
  return {
    broker, workers, gateway, channel,
    // [{node, ms}] of every execution of `requestId`, in time order.
    execs(requestId) {
      const out = [];
      for (const [node, w] of Object.entries(workers)) {
        for (const line of w.lines) {
          const m = line.match(/^EXEC (\S+) (\d+)$/);
          if (m && m[1] === requestId) out.push({ node, ms: Number(m[2]) });
        }
      }
      return out.sort((a, b) => a.ms - b.ms);
    },
    // execs(requestId) once at least `min` are seen and no more come for 250 ms: a worker's
    // EXEC line travels on its stdout pipe, which may reach the test after the call's answer.
    async settled(requestId, min = 1) {
      await eventually(() => this.execs(requestId).length >= min, 5000, 20);
      for (let n = -1; n !== this.execs(requestId).length;) {
        n = this.execs(requestId).length;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      return this.execs(requestId);
    },
    dumpLogs() {
      for (const p of procs) console.error(`----- ${p.name} stderr -----\n${p.stderr}`);
    },
    async stop() {
      socket.disconnect();
      const errors = [];
      for (const p of procs.slice().reverse()) {
        try { await p.stop(); } catch (e) { errors.push(e); }
      }
      if (errors.length) throw errors[0];
    },
  };
}

test('a call whose worker is killed mid-call falls back to another node, run once on each', async () => {
  const s = await startNodes(['n1', 'n2']);
  try {
    const pending = call(s.channel, { service: 'test_service', request_type: 'tally', request_id: 'fb1', args: { ms: 1500 } }, 20000);
    let first;
    await eventually(() => (first = s.execs('fb1')[0]), 5000, 20);
    await s.workers[first.node].kill('SIGKILL');
    const r = await pending;
    assert.equal(r.success, true, JSON.stringify(r));
    assert.deepEqual(r.result, { request_id: 'fb1' });
    const execs = await s.settled('fb1', 2);
    assert.equal(execs.length, 2, JSON.stringify(execs));
    assert.notEqual(execs[1].node, first.node);
    // A handler's retryable error without a retry setting is an answer: no fallback.
    const flaky = await call(s.channel, { service: 'test_service', request_type: 'tally', request_id: 'fb2', args: { mode: 'retryable' } });
    assert.deepEqual([flaky.success, flaky.error, flaky.can_retry], [false, 'flaky', true]);
    assert.equal((await s.settled('fb2')).length, 1);
  } catch (e) {
    s.dumpLogs();
    throw e;
  } finally {
    await s.stop();
  }
});

test('retry N, all_nodes:N and same_node:N make exactly their attempts, spaced by the backoff', async () => {
  const s = await startNodes(['n1', 'n2', 'n3']);
  try {
    const ask = (request_type, request_id, mode) =>
      call(s.channel, { service: 'test_service', request_type, request_id, args: { mode } }, 20000);

    const r3 = await ask('tally_retry3', 'r3', 'retryable');
    assert.deepEqual([r3.success, r3.error, r3.can_retry], [false, 'flaky', false]);
    const e3 = await s.settled('r3', 3);
    assert.equal(e3.length, 3, JSON.stringify(e3));
    assert.equal(new Set(e3.map((e) => e.node)).size, 3, 'moves across nodes');
    // 100 ms before the 2nd attempt, 200 ms before the 3rd (at least; jitter only adds).
    assert.ok(e3[1].ms - e3[0].ms >= 100, JSON.stringify(e3));
    assert.ok(e3[2].ms - e3[1].ms >= 200, JSON.stringify(e3));

    const a3 = await ask('tally_all3', 'a3', 'retryable');
    assert.deepEqual([a3.success, a3.can_retry], [false, false]);
    const ea = await s.settled('a3', 3);
    assert.equal(ea.length, 3, JSON.stringify(ea));
    assert.equal(new Set(ea.map((e) => e.node)).size, 3);

    const s2 = await ask('tally_same2', 's2', 'retryable');
    assert.deepEqual([s2.success, s2.error, s2.can_retry], [false, 'flaky', false]);
    const es = await s.settled('s2', 2);
    assert.equal(es.length, 2, JSON.stringify(es));
    assert.equal(es[0].node, es[1].node, 'stays on the node chosen first');
    assert.ok(es[1].ms - es[0].ms >= 100, JSON.stringify(es));

    // An ordinary error answer is returned at once, never retried.
    const plain = await ask('tally_retry3', 'p1', 'error');
    assert.deepEqual([plain.success, plain.error, plain.can_retry], [false, 'plain error', false]);
    assert.equal((await s.settled('p1')).length, 1);

    // A success on the first attempt: one execution.
    const ok = await ask('tally_retry3', 'ok1', 'ok');
    assert.equal(ok.success, true);
    assert.equal((await s.settled('ok1')).length, 1);
  } catch (e) {
    s.dumpLogs();
    throw e;
  } finally {
    await s.stop();
  }
});

test('the timeout bounds all attempts together', async () => {
  const s = await startNodes(['n1', 'n2']);
  try {
    // retry 10 within a 1000 ms timeout: backoffs of 100, 200, 400 ms leave no time for the
    // 800 ms one, so the client hears the last failure well before ten attempts.
    const started = Date.now();
    const r = await call(s.channel, { service: 'test_service', request_type: 'tally_short', request_id: 't1', args: { mode: 'retryable' } }, 20000);
    assert.equal(r.success, false);
    assert.equal(r.error, 'flaky');
    const n = (await s.settled('t1', 2)).length;
    assert.ok(n >= 2 && n <= 5, `${n} attempts`);
    // Nothing runs after the answer.
    const after = await call(s.channel, { service: 'test_service', request_type: 'tally', request_id: 'after', args: {} });
    assert.equal(after.success, true);
    assert.equal((await s.settled('t1', n)).length, n);
    assert.ok(Date.now() - started < 10000);
    // Attempts that time out: each gets a share of the timeout, the whole stays within it.
    const slow = await call(s.channel, { service: 'test_service', request_type: 'tally_short', request_id: 't2', args: { ms: 3000 } }, 20000);
    assert.equal(slow.success, false);
    assert.equal(slow.error, 'Request timed out');
    assert.ok((await s.settled('t2')).length >= 1);
  } catch (e) {
    s.dumpLogs();
    throw e;
  } finally {
    await s.stop();
  }
});
