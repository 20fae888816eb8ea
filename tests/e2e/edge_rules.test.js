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
