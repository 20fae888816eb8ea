// SPDX-License-Identifier: MIT
// A service's own code attaches telemetry handlers in its worker process
// (worker/include/genapi/telemetry.h; docs/telemetry.md, "In a worker"): genapi-test-worker
// --telemetry PREFIX prints each event its handler gets. Through a live stack: config.push when
// the broker takes the table, task start/stop of a call, task.exception of a handler that
// does not answer, task.rejected when the pool and queue are full; a prefix selects its events only.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { startBroker, startWorker, startGateway, connect, join, call, eventually } = require('../support/stack');

function events(worker, name) {
  return worker.lines.filter((l) => l.startsWith(`EVENT ${name} `));
}

test('a worker program sees its own telemetry events through genapi/telemetry.h', async () => {
  const broker = await startBroker();
  const procs = [broker];
  try {
    const all = await startWorker('genapi-test-worker', broker,
      { args: ['--telemetry', '*', '--set', 'threads=1', '--set', 'queue_max=1', '--set', 'node=w-all'] });
    procs.push(all);
    const pool = await startWorker('genapi-test-worker', broker,
      { args: ['--telemetry', 'genapi.worker_pool.task.stop', '--set', 'node=w-stop'] });
    procs.push(pool);
    await eventually(() => events(all, 'genapi.config.push').length >= 1, 10000);
    assert.match(events(all, 'genapi.config.push')[0], /^EVENT genapi\.config\.push test_service\.- success=true reason=- count=[1-9]/);

    const gateway = await startGateway(broker);
    procs.push(gateway);
    const socket = connect(gateway.url);
    const { channel } = await join(socket);
    try {
      let n = 0;
      const callOn = (request_type, args) => call(channel, { service: 'test_service', request_type, request_id: `t${++n}`, args });
      // Calls until each worker has run some (the broker picks one per call).
      await eventually(async () => {
        assert.equal((await callOn('echo', { value: n })).success, true);
        return events(all, 'genapi.worker_pool.task.stop').length >= 1 && events(pool, 'genapi.worker_pool.task.stop').length >= 1;
      }, 15000, 10);
      for (const w of [all, pool]) {
        for (const l of events(w, 'genapi.worker_pool.task.stop')) {
          assert.match(l, /test_service\.echo success=true reason=- count=0 duration_us=\d+$/);
        }
      }
      // The prefix: the second worker's handler sees task.stop only, even of its own calls.
      assert.ok(pool.lines.filter((l) => l.startsWith('EVENT ')).every((l) => l.startsWith('EVENT genapi.worker_pool.task.stop ')));
      assert.ok(events(all, 'genapi.worker_pool.task.start').length >= 1);

      // Without the second worker, every call goes to the first.
      await pool.stop();
      procs.splice(procs.indexOf(pool), 1);
      await eventually(async () => {
        const r = await callOn('silent', {});
        return r.success === false && events(all, 'genapi.worker_pool.task.exception').length >= 1;
      }, 15000);
      assert.match(events(all, 'genapi.worker_pool.task.exception')[0], /test_service\.silent success=false reason=returned without answering/);

      // One thread, a queue of one: a third concurrent call is refused at once.
      const slow = [0, 1, 2].map(() => callOn('sleep', { ms: 1500 }));
      const results = await Promise.all(slow);
      assert.ok(results.some((r) => r.success === false), JSON.stringify(results));
      await eventually(() => events(all, 'genapi.worker_pool.task.rejected').length >= 1, 10000);
      assert.match(events(all, 'genapi.worker_pool.task.rejected')[0], /test_service\.- success=- reason=pool and queue full/);
    } finally {
      socket.disconnect();
    }
  } finally {
    for (const p of procs.reverse()) await p.stop();
  }
});
