// SPDX-License-Identifier: MIT
// The walkthrough's sections 5 and 6 and fire-and-forget: async ack then result, streams in
// order (10 ticks within the default timeout; search batches; 10,000 chunks; concurrent streams
// on one connection), the stream timeout
// as a bound on silence, stop by request id, stop on disconnect (the worker sees the cancel), a
// handler crashing mid-stream or dying under an infinite stream, a full worker pool, and `none`
// never answering.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { BIN, startStack, startWorker, connect, join, call, waitForPushes } = require('../support/stack');

const of = (id) => (pushes) => pushes.filter((p) => p.request_id === id);
const ended = (id) => (pushes) => of(id)(pushes).some((p) => ['last', 'end', 'error'].includes(p.kind));

test('async: the ack at once, the result as a later push', async () => {
  const stack = await startStack({ workers: ['report_service'] });
  try {
    const { channel } = await join(connect(stack.url, {}, stack));
    const t0 = Date.now();
    const ack = await call(channel, { request_id: 'rep', service: 'report_service', request_type: 'generate_report' });
    assert.equal(ack.kind, 'ack');
    assert.equal(ack.async, true);
    assert.equal(ack.has_more, false);
    assert.ok(Date.now() - t0 < 1000);
    const pushes = await waitForPushes(channel, (p) => of('rep')(p).some((x) => x.kind === 'result'), 10000);
    const result = of('rep')(pushes).find((x) => x.kind === 'result');
    assert.deepEqual(result.result, { report_url: 'https://example.com/reports/123.pdf' });
    assert.equal(result.success, true);
    assert.ok(Date.now() - t0 >= 2900);
  } finally {
    await stack.stop();
  }
});

test('stream: ten ticks then the last result, in order, within the default timeout', async () => {
  // stream_events is declared as the walkthrough declares it: no timeout, so the default
  // 5000 ms, and it runs about 5 s: the timeout bounds the silence between messages.
  const stack = await startStack({ workers: ['event_service'] });
  try {
    const { channel } = await join(connect(stack.url, {}, stack));
    const ack = await call(channel, { request_id: 'ev', service: 'event_service', request_type: 'stream_events' });
    assert.deepEqual([ack.kind, ack.async, ack.has_more], ['ack', true, true]);
    const pushes = of('ev')(await waitForPushes(channel, ended('ev'), 10000));
    const chunks = pushes.filter((p) => p.kind === 'chunk');
    assert.deepEqual(chunks.map((c) => c.result.number), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    for (const c of chunks) assert.deepEqual([c.has_more, c.async, c.success], [true, true, true]);
    const last = pushes[pushes.length - 1];
    assert.equal(last.kind, 'last');
    assert.deepEqual(last.result, { event: 'done', total: 10 });
    assert.equal(last.has_more, false);
  } finally {
    await stack.stop();
  }
});

test('stream: stream_search takes no arguments, sends its batches, then completes', async () => {
  const stack = await startStack({ workers: ['event_service'] });
  try {
    const { channel } = await join(connect(stack.url, {}, stack));
    const ack = await call(channel, { request_id: 'se', service: 'event_service', request_type: 'stream_search', version: '1.0.0' });
    assert.equal(ack.kind, 'ack');
    const pushes = of('se')(await waitForPushes(channel, ended('se'), 10000));
    const chunks = pushes.filter((p) => p.kind === 'chunk');
    assert.ok(chunks.length >= 2);
    for (const c of chunks) assert.ok(Array.isArray(c.result) && c.result.length > 0);
    assert.equal(pushes[pushes.length - 1].kind, 'end');
    const refused = await call(channel, { request_id: 'se2', service: 'event_service', request_type: 'stream_search', args: { query: 'x' } });
    assert.deepEqual([refused.success, refused.error], [false, 'Unknown argument: query']);
  } finally {
    await stack.stop();
  }
});

test('stream: the timeout bounds silence, not the whole stream; a silent stream ends with a timeout error', async () => {
  const stack = await startStack({ workers: ['genapi-test-worker'] });
  try {
    const { channel } = await join(connect(stack.url, {}, stack));
    const svc = { service: 'test_service', request_type: 'paced' };
    // timeout 1500 ms; 8 chunks 300 ms apart: the stream outlives its timeout, never silent long.
    await call(channel, { ...svc, request_id: 'talks', args: { n: 8, interval_ms: 300 } });
    let pushes = of('talks')(await waitForPushes(channel, ended('talks'), 15000));
    assert.deepEqual(pushes.filter((p) => p.kind === 'chunk').map((c) => c.result.i), [1, 2, 3, 4, 5, 6, 7, 8]);
    assert.equal(pushes[pushes.length - 1].kind, 'end');
    // One chunk, then 3 s of silence: past the 1500 ms bound.
    await call(channel, { ...svc, request_id: 'quiet', args: { n: 2, interval_ms: 3000 } });
    pushes = of('quiet')(await waitForPushes(channel, ended('quiet'), 10000));
    assert.deepEqual(pushes.filter((p) => p.kind === 'chunk').map((c) => c.result.i), [1]);
    const last = pushes[pushes.length - 1];
    assert.deepEqual([last.kind, last.success, last.error], ['error', false, 'Request timed out']);
  } finally {
    await stack.stop();
  }
});

test('stream: with timeout infinity, a worker that dies still ends the stream with an error', async () => {
  const stack = await startStack({ workers: ['genapi-test-worker'] });
  try {
    const { channel } = await join(connect(stack.url, {}, stack));
    await call(channel, { request_id: 'inf', service: 'test_service', request_type: 'watch' });
    await waitForPushes(channel, (p) => of('inf')(p).some((x) => x.kind === 'chunk'));
    await stack.workers[0].kill('SIGKILL');
    const pushes = of('inf')(await waitForPushes(channel, ended('inf'), 5000));
    const last = pushes[pushes.length - 1];
    assert.deepEqual([last.kind, last.error], ['error', 'Worker lost']);
  } finally {
    await stack.stop();
  }
});

test('stream: 10,000 small chunks arrive complete and in order', async () => {
  const stack = await startStack({ workers: ['genapi-test-worker'] });
  try {
    const { channel } = await join(connect(stack.url, {}, stack));
    await call(channel, { request_id: 'big', service: 'test_service', request_type: 'count', args: { n: 10000 } });
    const pushes = of('big')(await waitForPushes(channel, ended('big'), 30000));
    const chunks = pushes.filter((p) => p.kind === 'chunk');
    assert.equal(chunks.length, 10000);
    chunks.forEach((c, i) => assert.equal(c.result.i, i + 1));
    assert.equal(pushes[pushes.length - 1].kind, 'end');
  } finally {
    await stack.stop();
  }
});

test('stream: concurrent streams on one connection and on two channels each get their own chunks, complete and in order', async () => {
  // The worker sends each stream's chunks in batches and the gateway reuses each stream's frame
  // around the data: interleaved streams must still get only their own request_id and topic.
  const stack = await startStack({ workers: ['genapi-test-worker'], gatewayArgs: ['--set', 'topics=api:lobby,api:other'] });
  try {
    const socket = connect(stack.url, {}, stack);
    const { channel: lobby } = await join(socket);
    const { channel: other } = await join(socket, 'api:other');
    await Promise.all([
      call(lobby, { request_id: 'c1', service: 'test_service', request_type: 'count', args: { n: 3000 } }),
      call(lobby, { request_id: 'c2', service: 'test_service', request_type: 'count', args: { n: 2000 } }),
      call(other, { request_id: 'c3', service: 'test_service', request_type: 'count', args: { n: 1000 } }),
    ]);
    const onLobby = await waitForPushes(lobby, (p) => ended('c1')(p) && ended('c2')(p), 30000);
    const onOther = await waitForPushes(other, ended('c3'), 30000);
    assert.ok(onLobby.every((p) => p.request_id === 'c1' || p.request_id === 'c2'));
    assert.ok(onOther.every((p) => p.request_id === 'c3'));
    for (const [id, n, pushes] of [['c1', 3000, onLobby], ['c2', 2000, onLobby], ['c3', 1000, onOther]]) {
      const mine = of(id)(pushes);
      const chunks = mine.filter((p) => p.kind === 'chunk');
      assert.equal(chunks.length, n, id);
      chunks.forEach((c, i) => {
        assert.equal(c.result.i, i + 1);
        assert.equal(c.success, true);
        assert.equal(c.has_more, true);
      });
      assert.equal(mine[mine.length - 1].kind, 'end');
    }
  } finally {
    await stack.stop();
  }
});

test('stream: stopped by request id (genapi-ctl stop-stream) ends with kind end; the worker sees the cancel', async () => {
  const stack = await startStack({ workers: ['genapi-test-worker'] });
  try {
    const { channel } = await join(connect(stack.url, {}, stack));
    await call(channel, { request_id: 'w-stop', service: 'test_service', request_type: 'watch' });
    await waitForPushes(channel, (p) => of('w-stop')(p).filter((x) => x.kind === 'chunk').length >= 2);
    const out = await new Promise((resolve, reject) => execFile(path.join(BIN, 'genapi-ctl'),
      ['stop-stream', 'w-stop', '--broker', stack.broker.endpoints.gateways],
      (err, stdout) => (err ? reject(err) : resolve(stdout))));
    assert.deepEqual(JSON.parse(out), { ok: true, stopped: 1 });
    const pushes = of('w-stop')(await waitForPushes(channel, ended('w-stop'), 5000));
    assert.equal(pushes[pushes.length - 1].kind, 'end');
    await stack.workers[0].waitForLine(/^STREAM cancelled w-stop$/, 2000);
  } finally {
    await stack.stop();
  }
});

test('stream: a client that disconnects mid-stream stops it; the worker sees the cancel within a second', async () => {
  const stack = await startStack({ workers: ['genapi-test-worker'] });
  try {
    const socket = connect(stack.url, {}, stack);
    const { channel } = await join(socket);
    await call(channel, { request_id: 'w-gone', service: 'test_service', request_type: 'watch' });
    await waitForPushes(channel, (p) => of('w-gone')(p).some((x) => x.kind === 'chunk'));
    socket.disconnect();
    await stack.workers[0].waitForLine(/^STREAM cancelled w-gone$/, 1000);
  } finally {
    await stack.stop();
  }
});

test('stream: a handler crashing mid-stream gives the client an error, not a hang', async () => {
  const stack = await startStack({ workers: ['genapi-test-worker'] });
  try {
    const { channel } = await join(connect(stack.url, {}, stack));
    stack.workers[0].killedOnPurpose = true; // it aborts by design
    await call(channel, { request_id: 'crash', service: 'test_service', request_type: 'crash_stream' });
    const pushes = of('crash')(await waitForPushes(channel, ended('crash'), 5000));
    const last = pushes[pushes.length - 1];
    assert.equal(last.kind, 'error');
    assert.equal(last.success, false);
    assert.equal(last.async, true);
    assert.equal(last.error, 'Worker lost');
  } finally {
    await stack.stop();
  }
});

test('a full worker pool refuses with Service temporarily unavailable (can_retry)', async () => {
  const stack = await startStack({ workers: [] });
  try {
    const worker = await startWorker('genapi-test-worker', stack.broker, { args: ['--set', 'threads=1', '--set', 'queue_max=1'] });
    stack.procs.push(worker);
    const { channel } = await join(connect(stack.url, {}, stack));
    // Wait for the gateway to know test_service (it registered after the gateway started).
    const sleep = (id) => call(channel, { request_id: id, service: 'test_service', request_type: 'sleep', args: { ms: 800 } });
    const first = sleep('a');
    await worker.waitForLine(/^HANDLER sleep start/);
    const second = sleep('b'); // queued
    const third = await sleep('c'); // refused
    assert.deepEqual([third.success, third.error, third.can_retry], [false, 'Service temporarily unavailable', true]);
    assert.equal((await first).success, true);
    assert.equal((await second).success, true);
  } finally {
    await stack.stop();
  }
});

test('none: the worker runs it, the client never receives anything', async () => {
  const stack = await startStack({ workers: ['genapi-test-worker'] });
  try {
    const { channel } = await join(connect(stack.url, {}, stack));
    let replied = false;
    channel.push('api', { request_id: 'f', service: 'test_service', request_type: 'fire', args: { value: 'hello' } }, 1500)
      .receive('ok', () => { replied = true; })
      .receive('error', () => { replied = true; });
    // Invalid args for a none function: still silence.
    channel.push('api', { request_id: 'f2', service: 'test_service', request_type: 'fire', args: { nope: 1 } }, 1500)
      .receive('ok', () => { replied = true; });
    await stack.workers[0].waitForLine(/^FIRED hello$/, 3000);
    // A later sync call's answer arrives: anything for the none calls would have come first.
    const r = await call(channel, { request_id: 'after', service: 'test_service', request_type: 'echo', args: { value: 1 } });
    assert.equal(r.success, true);
    assert.equal(replied, false);
    assert.deepEqual(channel.pushes.filter((p) => p.request_id === 'f' || p.request_id === 'f2'), []);
  } finally {
    await stack.stop();
  }
});

test('a permission callback decides before any ack: async, stream and none', async () => {
  const stack = await startStack({ workers: ['genapi-test-worker'] });
  try {
    const { channel } = await join(connect(stack.url, {}, stack));
    const svc = { service: 'test_service' };

    // Denied: the reply is the denial itself, never an ack first, and nothing is pushed.
    let r = await call(channel, { ...svc, request_id: 'ad', request_type: 'guarded_async', args: { value: 'closed' } });
    assert.deepEqual([r.kind, r.success, r.error], ['error', false, 'Permission denied: value is not open']);
    r = await call(channel, { ...svc, request_id: 'sd', request_type: 'guarded_stream', args: { value: 'closed', n: 3 } });
    assert.deepEqual([r.kind, r.success, r.error], ['error', false, 'Permission denied: value is not open']);

    // Allowed: the ack, then the result (async) or the chunks (stream).
    r = await call(channel, { ...svc, request_id: 'aa', request_type: 'guarded_async', args: { value: 'open' } });
    assert.deepEqual([r.kind, r.async], ['ack', true]);
    let pushes = await waitForPushes(channel, (p) => of('aa')(p).some((x) => x.kind === 'result'), 5000);
    assert.deepEqual(of('aa')(pushes).find((x) => x.kind === 'result').result, { value: 'open' });
    r = await call(channel, { ...svc, request_id: 'sa', request_type: 'guarded_stream', args: { value: 'open', n: 3 } });
    assert.deepEqual([r.kind, r.has_more], ['ack', true]);
    pushes = await waitForPushes(channel, ended('sa'), 5000);
    assert.equal(of('sa')(pushes).filter((x) => x.kind === 'chunk' || x.kind === 'last').length, 3);

    // none: silence either way; only the allowed call runs.
    let replied = false;
    for (const [id, value] of [['nd', 'closed'], ['na', 'open']]) {
      channel.push('api', { ...svc, request_id: id, request_type: 'guarded_fire', args: { value } }, 1500)
        .receive('ok', () => { replied = true; })
        .receive('error', () => { replied = true; });
    }
    await stack.workers[0].waitForLine(/^FIRED open$/, 3000);
    r = await call(channel, { ...svc, request_id: 'after', request_type: 'echo', args: { value: 1 } });
    assert.equal(r.success, true);
    assert.equal(replied, false);
    assert.ok(!stack.workers[0].lines.some((l) => l === 'FIRED closed'));
    // Denied calls: at most the copy of the denial (delivery "both"), never an ack or a result.
    assert.deepEqual(channel.pushes.filter((p) => ['ad', 'sd'].includes(p.request_id)).map((p) => p.kind)
      .filter((k) => k !== 'error'), []);
    assert.deepEqual(channel.pushes.filter((p) => ['nd', 'na'].includes(p.request_id)), []);
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    await stack.stop();
  }
});
