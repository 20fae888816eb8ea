// SPDX-License-Identifier: MIT
// A call the client was told is lost is never executed afterwards (docs/protocol.md, "Worker
// lives" and "REQUEST"): a worker stopped (SIGSTOP) with calls queued is declared lost, the
// clients hear `Worker lost`, and after SIGCONT the worker drops those calls, registers afresh
// and serves again at once (no breaker opened by the old life's failures). A call that waited
// in a busy worker's queue past its deadline is dropped when dequeued, not run.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { startBroker, startWorker, startGateway, connect, join, call, eventually } = require('../support/stack');

async function startOne(workerArgs) {
  const broker = await startBroker();
  const worker = await startWorker('genapi-test-worker', broker, { args: workerArgs });
  const gateway = await startGateway(broker);
  const socket = connect(gateway.url);
  const { channel } = await join(socket);
  const procs = [broker, worker, gateway];
  return {
    worker, channel,
    execs: (id, from = 0) => worker.lines.slice(from).filter((l) => l.startsWith(`EXEC ${id} `)).length,
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

test('calls queued at a stopped worker are answered Worker lost and never run after SIGCONT', async () => {
  const s = await startOne(['--set', 'threads=1']);
  try {
    // The one thread is busy; eight calls wait in the worker's queue behind it.
    const busy = call(s.channel, { service: 'test_service', request_type: 'sleep', request_id: 'busy', args: { ms: 3000 } }, 20000);
    await s.worker.waitForLine(/^HANDLER sleep start/);
    const ids = Array.from({ length: 8 }, (_, i) => `q${i}`);
    const pending = ids.map((id) => call(s.channel, { service: 'test_service', request_type: 'tally', request_id: id, args: {} }, 20000));
    // Let them reach the worker's queue (nothing answers them while the thread sleeps).
    await new Promise((r) => setTimeout(r, 300));
    s.worker.child.kill('SIGSTOP');
    let answers;
    let mark;
    try {
      answers = await Promise.all(pending);
      mark = s.worker.lines.length; // the worker is stopped: anything later ran after the answers
      await busy;
      // Stopped for longer than the broker's liveness window (3 x 200 ms), well within the
      // calls' 10 s timeout: only the worker's loss can keep them from running.
      await new Promise((r) => setTimeout(r, 1500));
    } finally {
      s.worker.child.kill('SIGCONT');
    }
    for (const a of answers) {
      assert.deepEqual([a.success, a.error, a.can_retry], [false, 'Worker lost', true]);
    }
    // Available again promptly: the first call that works runs on the worker that came back.
    const back = await eventually(async () => {
      const r = await call(s.channel, { service: 'test_service', request_type: 'tally', request_id: `b${Date.now()}`, args: {} });
      return r.success && r;
    }, 5000);
    assert.equal(back.success, true);
    // The single thread runs in order: had any queued call survived, it would have run by now.
    for (const id of ids) assert.equal(s.execs(id, mark), 0, `${id} ran after its client was told it was lost`);
    // Several calls in a row succeed: no breaker opened by the old life's failures.
    for (let i = 0; i < 6; i++) {
      const r = await call(s.channel, { service: 'test_service', request_type: 'echo', request_id: `e${i}`, args: { value: i } });
      assert.equal(r.success, true, JSON.stringify(r));
    }
    assert.match(s.worker.stderr, /queued request\(s\) dropped|request received while registering afresh/);
  } catch (e) {
    s.dumpLogs();
    throw e;
  } finally {
    await s.stop();
  }
});

test('a call that waited in a busy worker past its deadline is dropped when dequeued', async () => {
  const s = await startOne(['--set', 'threads=1', '--set', 'log_level=info']);
  try {
    const busy = call(s.channel, { service: 'test_service', request_type: 'sleep', request_id: 'busy', args: { ms: 2000 } }, 20000);
    await s.worker.waitForLine(/^HANDLER sleep start/);
    // tally_1s times out at the broker after 1 s, while the thread still sleeps.
    const late = await call(s.channel, { service: 'test_service', request_type: 'tally_1s', request_id: 'late', args: {} }, 20000);
    assert.deepEqual([late.success, late.error], [false, 'Request timed out']);
    assert.equal((await busy).success, true);
    // The next call runs after the late one was dequeued (one thread, in order).
    const next = await call(s.channel, { service: 'test_service', request_type: 'tally', request_id: 'next', args: {} });
    assert.equal(next.success, true);
    assert.equal(s.execs('next'), 1);
    assert.equal(s.execs('late'), 0, 'a call its client was told timed out ran afterwards');
    await eventually(() => /dropped: dequeued \d+ ms after its deadline/.test(s.worker.stderr), 5000);
  } catch (e) {
    s.dumpLogs();
    throw e;
  } finally {
    await s.stop();
  }
});
