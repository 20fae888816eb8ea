// SPDX-License-Identifier: MIT
// Bad input at the edge: every malformed frame, unknown topic or event, bad request and
// oversized or invalid message gets a clear error or a documented close, and other
// connections are unaffected. Raw `ws` sockets where the phoenix client cannot send the input.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const WebSocket = require('ws');
const { startStack, connect, join, call } = require('../support/stack');

// A raw connection with a queue of parsed frames.
async function raw(url) {
  const ws = new WebSocket(`${url}/websocket?vsn=2.0.0`);
  const frames = [];
  const waiters = [];
  ws.on('message', (data) => {
    frames.push(JSON.parse(data.toString()));
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
    const t = setTimeout(() => { waiters.splice(waiters.indexOf(check), 1); reject(new Error('no matching frame')); }, timeoutMs);
    waiters.push(check);
    check();
  });
  ws.sendFrame = (f) => ws.send(JSON.stringify(f));
  return ws;
}

const isReply = (ref) => (f) => f[1] === ref && f[3] === 'phx_reply';

test('protocol errors get clear replies and leave the connection usable', async () => {
  const stack = await startStack({ workers: ['user_service'] });
  const sockets = [];
  try {
    const ws = await raw(stack.url);
    sockets.push(ws);
    // Heartbeat.
    ws.sendFrame([null, '5', 'phoenix', 'heartbeat', {}]);
    assert.deepEqual(await ws.next(isReply('5')), [null, '5', 'phoenix', 'phx_reply', { status: 'ok', response: {} }]);
    // An unknown topic.
    ws.sendFrame(['1', '1', 'nope:1', 'phx_join', {}]);
    assert.deepEqual((await ws.next(isReply('1')))[4], { status: 'error', response: { reason: 'unmatched topic' } });
    // A push on a topic not joined.
    ws.sendFrame(['2', '2', 'api:lobby', 'api', { request_id: 'x', service: 'user_service', request_type: 'list_users' }]);
    assert.deepEqual(await ws.next(isReply('2')), ['2', '2', 'api:lobby', 'phx_reply', { status: 'error', response: { reason: 'unmatched topic' } }]);
    // Not JSON; not an array: phx_error on "phoenix", connection still open.
    ws.send('not json');
    let e = await ws.next((f) => f[2] === 'phoenix' && f[3] === 'phx_error');
    assert.match(e[4].reason, /^malformed frame: /);
    ws.send('{"a":1}');
    e = await ws.next((f) => f[2] === 'phoenix' && f[3] === 'phx_error');
    assert.match(e[4].reason, /^malformed frame: /);
    ws.sendFrame([null, '6', 'phoenix', 'heartbeat', {}]);
    await ws.next(isReply('6'));
    // Join, then bad requests.
    ws.sendFrame(['3', '3', 'api:lobby', 'phx_join', {}]);
    assert.equal((await ws.next(isReply('3')))[4].status, 'ok');
    ws.sendFrame(['3', '4', 'api:lobby', 'foo', {}]);
    assert.deepEqual((await ws.next(isReply('4')))[4], { status: 'error', response: { reason: 'unknown event: foo' } });

    const { channel } = await join(connect(stack.url, {}, stack));
    const cases = [
      [{ request_id: 'm1', request_type: 'get_user' }, 'Missing field: service', 'm1'],
      [{ service: 'user_service', request_type: 'get_user', args: { user_id: '1' } }, 'Missing field: request_id', 'unknown'],
      [{ request_id: 'm3', service: 'user_service', request_type: 'nope' }, 'Unknown function', 'm3'],
      [{ request_id: 'm4', service: 'user_service', request_type: 'get_user', args: {} }, 'Missing required argument: user_id', 'm4'],
      [{ request_id: 'm5', service: 'user_service', request_type: 'get_user', args: { user_id: '1', x: 1 } }, 'Unknown argument: x', 'm5'],
      [{ request_id: 'm6', service: 'user_service', request_type: 'get_user', args: { user_id: 5 } }, 'Invalid type for argument user_id: expected string', 'm6'],
      [{ request_id: 'm7', service: 'user_service', request_type: 'get_user', version: '9.9.9', args: { user_id: '1' } }, 'Unknown function', 'm7'],
      [{ request_id: 'm8', service: 5, request_type: 'get_user' }, 'Invalid field: service (expected a non-empty string)', 'm8'],
      [{ request_id: 'm9', service: 'user_service', request_type: 'get_user', args: [] }, 'Invalid field: args (expected an object)', 'm9'],
    ];
    for (const [payload, error, rid] of cases) {
      const r = await call(channel, payload);
      assert.equal(r.success, false, JSON.stringify(payload));
      assert.equal(r.kind, 'error');
      assert.equal(r.error, error);
      assert.equal(r.request_id, rid);
    }
    // user_id at top level is ignored; the call still works.
    const spoof = await call(channel, { request_id: 's', service: 'user_service', request_type: 'get_user', user_id: 'spoof', args: { user_id: '1' } });
    assert.equal(spoof.success, true);
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    for (const s of sockets) s.terminate();
    await stack.stop();
  }
});

test('an oversized frame closes with 1009 and invalid UTF-8 with 1007; others are unaffected', async () => {
  const stack = await startStack({ workers: ['user_service'] });
  const sockets = [];
  try {
    const { channel } = await join(connect(stack.url, {}, stack));
    const big = await raw(stack.url);
    sockets.push(big);
    big.sendFrame(['1', '1', 'api:lobby', 'phx_join', {}]);
    await big.next(isReply('1'));
    big.sendFrame(['1', '2', 'api:lobby', 'api', { pad: 'x'.repeat(1024 * 1024 + 1) }]);
    assert.equal((await big.closed).code, 1009);

    const bad = await raw(stack.url);
    sockets.push(bad);
    bad.send(Buffer.from([0x5b, 0x22, 0xc3, 0x28, 0x22, 0x5d]), { binary: false });
    assert.equal((await bad.closed).code, 1007);

    const r = await call(channel, { request_id: 'after', service: 'user_service', request_type: 'get_user', args: { user_id: '1' } });
    assert.equal(r.success, true);
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    for (const s of sockets) s.terminate();
    await stack.stop();
  }
});
