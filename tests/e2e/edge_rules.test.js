// SPDX-License-Identifier: MIT
// Fail-closed rules at the gateway's edge, seen on raw frames: a `none` function's callers
// never hear anything, whichever check refuses them; a duplicate join closes the old one;
// refs must be strings; the handshake takes only the socket path and vsn=2.0.0; the global
// argument caps hold at every depth.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const WebSocket = require('ws');
const { startStack } = require('../support/stack');

// A raw connection that keeps every frame it receives (`all`) and a queue to wait on.
async function raw(url, query = 'vsn=2.0.0') {
  const ws = new WebSocket(`${url}/websocket?${query}`);
  const frames = [];
  const waiters = [];
  ws.all = [];
  ws.on('message', (data) => {
    const f = JSON.parse(data.toString());
    ws.all.push(f);
    frames.push(f);
    for (const w of waiters.slice()) w();
  });
  ws.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise((resolve, reject) => { ws.on('open', resolve); ws.on('error', reject); });
  ws.next = (pred, timeoutMs = 5000) => new Promise((resolve, reject) => {
    const check = () => {
      const i = frames.findIndex(pred);
      if (i >= 0) {
        const [f] = frames.splice(i, 1);
        waiters.splice(waiters.indexOf(check), 1);
        clearTimeout(t);
        resolve(f);
      }
    };
    const t = setTimeout(() => { waiters.splice(waiters.indexOf(check), 1); reject(new Error(`no matching frame in ${JSON.stringify(ws.all)}`)); }, timeoutMs);
    waiters.push(check);
    check();
  });
  ws.sendFrame = (f) => ws.send(typeof f === 'string' ? f : JSON.stringify(f));
  return ws;
}

const isReply = (ref) => (f) => f[1] === ref && f[3] === 'phx_reply';
const about = (refs, ids) => (f) => refs.includes(f[1]) || ids.includes(f[4] && f[4].request_id) ||
  ids.includes(f[4] && f[4].response && f[4].response.request_id);
const fire = (extra) => ({ service: 'test_service', request_type: 'fire', ...extra });

async function joined(url) {
  const ws = await raw(url);
  ws.sendFrame(['j', 'j', 'api:lobby', 'phx_join', {}]);
  assert.equal((await ws.next(isReply('j')))[4].status, 'ok');
  return ws;
}

test('none: refusals before dispatch (auth required, bad fields) are silent too', async () => {
  const stack = await startStack({ workers: ['genapi-test-worker'], gatewayArgs: ['--set', 'require_auth=true'] });
  const sockets = [];
  try {
    const ws = await joined(stack.url);
    sockets.push(ws);
    ws.sendFrame(['j', 'n1', 'api:lobby', 'api', fire({ request_id: 'n1', args: { value: 'a' } })]); // anonymous
    ws.sendFrame(['j', 'n2', 'api:lobby', 'api', fire({ args: { value: 'b' } })]); // no request_id
    ws.sendFrame(['j', 'n3', 'api:lobby', 'api', fire({ request_id: 'n3', args: [] })]); // args not an object
    ws.sendFrame(['j', 'n4', 'api:lobby', 'api', fire({ request_id: 7, args: {} })]); // request_id not a string
    // A function that cannot be identified is answered: its type is unknown.
    ws.sendFrame(['j', 'u1', 'api:lobby', 'api', { request_id: 'u1', service: 'test_service', request_type: 'nope' }]);
    const r = await ws.next(isReply('u1'));
    assert.deepEqual([r[4].response.success, r[4].response.error], [false, 'Authentication required']);
    ws.sendFrame([null, 'h', 'phoenix', 'heartbeat', {}]);
    await ws.next(isReply('h'));
    assert.deepEqual(ws.all.filter(about(['n1', 'n2', 'n3', 'n4'], ['n1', 'n3', 'unknown'])), []);
    assert.ok(!stack.workers[0].lines.some((l) => l.startsWith('FIRED')));
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    for (const s of sockets) s.terminate();
    await stack.stop();
  }
});

test('none: the in-flight limit refuses silently', async () => {
  const stack = await startStack({ workers: ['genapi-test-worker'], gatewayArgs: ['--set', 'max_inflight=1'] });
  const sockets = [];
  try {
    const ws = await joined(stack.url);
    sockets.push(ws);
    ws.sendFrame(['j', 's1', 'api:lobby', 'api', { request_id: 's1', service: 'test_service', request_type: 'sleep', args: { ms: 500 } }]);
    await stack.workers[0].waitForLine(/^HANDLER sleep start 500$/);
    ws.sendFrame(['j', 'n1', 'api:lobby', 'api', fire({ request_id: 'n1', args: { value: 'x' } })]);
    ws.sendFrame(['j', 'e1', 'api:lobby', 'api', { request_id: 'e1', service: 'test_service', request_type: 'echo', args: { value: 1 } }]);
    assert.equal((await ws.next(isReply('e1')))[4].response.error, 'Too many requests in flight');
    assert.equal((await ws.next(isReply('s1')))[4].response.success, true);
    ws.sendFrame([null, 'h', 'phoenix', 'heartbeat', {}]);
    await ws.next(isReply('h'));
    assert.deepEqual(ws.all.filter(about(['n1'], ['n1'])), []);
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    for (const s of sockets) s.terminate();
    await stack.stop();
  }
});

test('a duplicate join closes the old one (its stream stopped); phx_leave is ok then phx_close', async () => {
  const stack = await startStack({ workers: ['genapi-test-worker'] });
  const sockets = [];
  try {
    const ws = await raw(stack.url);
    sockets.push(ws);
    ws.sendFrame(['1', '1', 'api:lobby', 'phx_join', {}]);
    assert.equal((await ws.next(isReply('1')))[4].status, 'ok');
    ws.sendFrame(['1', '2', 'api:lobby', 'api', { request_id: 'w1', service: 'test_service', request_type: 'watch' }]);
    assert.equal((await ws.next(isReply('2')))[4].response.kind, 'ack');
    await stack.workers[0].waitForLine(/^HANDLER watch start w1$/);
    // The same topic joined again: phx_close for the old join, then the new join's reply.
    ws.sendFrame(['3', '3', 'api:lobby', 'phx_join', {}]);
    const reply = await ws.next(isReply('3'));
    assert.deepEqual(reply, ['3', '3', 'api:lobby', 'phx_reply', { status: 'ok', response: {} }]);
    const close = ws.all.findIndex((f) => f[3] === 'phx_close');
    assert.deepEqual(ws.all[close], ['1', '1', 'api:lobby', 'phx_close', {}]);
    assert.ok(close < ws.all.indexOf(reply));
    await stack.workers[0].waitForLine(/^STREAM cancelled w1$/);
    // The new join works; the old stream's chunks do not follow it.
    ws.sendFrame(['3', '4', 'api:lobby', 'api', { request_id: 'e', service: 'test_service', request_type: 'echo', args: { value: 2 } }]);
    assert.equal((await ws.next(isReply('4')))[4].response.result.value, 2);
    const after = ws.all.length;
    ws.sendFrame([null, 'h', 'phoenix', 'heartbeat', {}]);
    await ws.next(isReply('h'));
    assert.deepEqual(ws.all.slice(after).filter((f) => f[4] && f[4].request_id === 'w1'), []);
    // Leave: ok, then phx_close for that join; the topic is no longer joined.
    ws.sendFrame(['3', '5', 'api:lobby', 'phx_leave', {}]);
    assert.deepEqual(await ws.next(isReply('5')), ['3', '5', 'api:lobby', 'phx_reply', { status: 'ok', response: {} }]);
    assert.deepEqual(await ws.next((f) => f[3] === 'phx_close' && f[0] === '3'), ['3', '3', 'api:lobby', 'phx_close', {}]);
    ws.sendFrame(['3', '6', 'api:lobby', 'api', { request_id: 'x', service: 'test_service', request_type: 'echo', args: {} }]);
    assert.deepEqual((await ws.next(isReply('6')))[4], { status: 'error', response: { reason: 'unmatched topic' } });
    // Leaving a topic not joined is answered ok, with no phx_close.
    ws.sendFrame(['7', '7', 'chat:x', 'phx_leave', {}]);
    assert.deepEqual((await ws.next(isReply('7')))[4], { status: 'ok', response: {} });
    ws.sendFrame([null, 'h2', 'phoenix', 'heartbeat', {}]);
    await ws.next(isReply('h2'));
    assert.deepEqual(ws.all.filter((f) => f[3] === 'phx_close' && f[2] === 'chat:x'), []);
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    for (const s of sockets) s.terminate();
    await stack.stop();
  }
});

// The HTTP status of a WebSocket handshake to `path` (101 when it opens).
function handshakeStatus(base, path) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${base}${path}`);
    ws.on('open', () => { ws.terminate(); resolve({ status: 101 }); });
    ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    ws.on('error', reject);
  });
}

test('strict protocol: non-string refs get phx_error; only the socket path and vsn=2.0.0 are upgraded', async () => {
  const stack = await startStack({ workers: [] });
  const sockets = [];
  try {
    const ws = await raw(stack.url);
    sockets.push(ws);
    for (const frame of [[1, '1', 'api:lobby', 'phx_join', {}], ['1', 2, 'api:lobby', 'phx_join', {}], [null, 3, 'phoenix', 'heartbeat', {}]]) {
      ws.sendFrame(frame);
      const e = await ws.next((f) => f[3] === 'phx_error');
      assert.deepEqual(e, [null, null, 'phoenix', 'phx_error', { reason: 'malformed frame: join_ref and ref must be strings or null' }]);
    }
    ws.sendFrame([null, 'h', 'phoenix', 'heartbeat', {}]); // still open
    await ws.next(isReply('h'));
    assert.deepEqual(ws.all.filter((f) => f[3] === 'phx_reply' && f[1] !== 'h'), []);

    const base = stack.url.replace(/\/socket$/, '');
    let r = await handshakeStatus(base, '/other/websocket?vsn=2.0.0');
    assert.equal(r.status, 404);
    assert.match(r.body, /use \/socket\/websocket/);
    assert.equal((await handshakeStatus(base, '/socket?vsn=2.0.0')).status, 404);
    r = await handshakeStatus(base, '/socket/websocket');
    assert.equal(r.status, 400);
    assert.match(r.body, /vsn=2\.0\.0 required/);
    assert.equal((await handshakeStatus(base, '/socket/websocket?vsn=1.0.0')).status, 400);
    assert.equal((await handshakeStatus(base, '/socket/websocket?vsn=2.0.0')).status, 101);
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    for (const s of sockets) s.terminate();
    await stack.stop();
  }
});

test('the global caps hold for values nested in arguments', async () => {
  const stack = await startStack({ workers: ['genapi-test-worker'] });
  const sockets = [];
  try {
    const ws = await joined(stack.url);
    sockets.push(ws);
    const echo = (ref, value) => ws.sendFrame(['j', ref, 'api:lobby', 'api', { request_id: ref, service: 'test_service', request_type: 'echo', args: { value } }]);
    echo('big', { note: { text: 'x'.repeat(5000) } });
    assert.equal((await ws.next(isReply('big')))[4].response.error, 'Argument value exceeds max_bytes 3000 at value.note.text');
    echo('long', [1, Array(2000).fill(0)]);
    assert.equal((await ws.next(isReply('long')))[4].response.error, 'Argument value exceeds max_items 1000 at value[1]');
    echo('ok', { text: 'x'.repeat(3000), items: Array(1000).fill(0) });
    const r = (await ws.next(isReply('ok')))[4].response;
    assert.equal(r.success, true);
    assert.equal(r.result.value.items.length, 1000);
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    for (const s of sockets) s.terminate();
    await stack.stop();
  }
});
