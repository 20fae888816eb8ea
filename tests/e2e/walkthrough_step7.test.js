// SPDX-License-Identifier: MIT
// The walkthrough's section 1, Step 7, with the official phoenix client: join api:lobby, call
// list_users and get_user on user_service, and get exactly the walkthrough's answers, both as
// the phx_reply and as the "api" push (delivery "both").
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { Socket } = require('phoenix');
const WebSocket = require('ws');
const { startStack, waitForPushes, assertResponseShape } = require('../support/stack');

const ALICE = { id: '1', name: 'Alice', email: 'alice@example.com' };
const BOB = { id: '2', name: 'Bob', email: 'bob@example.com' };

test('walkthrough step 7: list_users and get_user over the phoenix client', async () => {
  const stack = await startStack({ workers: ['user_service'] });
  try {
    // As written in the walkthrough, with `ws` as the transport under Node.
    const socket = new Socket(stack.url, { transport: WebSocket });
    stack.sockets.push(socket);
    socket.connect();
    const channel = socket.channel('api:lobby', {});
    const pushes = [];
    channel.pushes = pushes;
    channel.on('api', (payload) => {
      pushes.push(payload);
      for (const w of channel.pushWaiters || []) w();
    });
    const replies = {};
    await new Promise((resolve, reject) => {
      channel.join().receive('ok', () => {
        const push = (payload) => channel.push('api', payload)
          .receive('ok', (r) => { replies[payload.request_id] = r; })
          .receive('error', reject);
        push({ service: 'user_service', request_type: 'list_users', request_id: 'req_' + Date.now() + '_a' });
        push({ service: 'user_service', request_type: 'get_user', request_id: 'req_' + Date.now() + '_b', args: { user_id: '1' } });
        push({ service: 'user_service', request_type: 'get_user', request_id: 'req_' + Date.now() + '_c', args: { user_id: '3' } });
        resolve();
      }).receive('error', reject);
    });
    await waitForPushes(channel, (p) => p.length >= 3);
    await new Promise((r) => { const t = setInterval(() => { if (Object.keys(replies).length >= 3) { clearInterval(t); r(); } }, 10); });

    const byType = (suffix) => pushes.find((p) => p.request_id.endsWith(suffix));
    const list = byType('_a');
    const alice = byType('_b');
    const missing = byType('_c');
    for (const r of [list, alice, missing]) {
      assertResponseShape(r);
      // The push and the phx_reply carry the same response.
      assert.deepEqual(replies[r.request_id], r);
    }
    assert.deepEqual(list.result, [ALICE, BOB]);
    assert.equal(list.success, true);
    assert.equal(list.kind, 'result');
    assert.equal(list.async, false);
    assert.equal(list.has_more, false);
    assert.equal(list.error, null);

    assert.deepEqual(alice.result, ALICE);
    assert.equal(alice.kind, 'result');

    assert.equal(missing.success, false);
    assert.equal(missing.kind, 'error');
    assert.equal(missing.error, 'not_found');
    assert.equal(missing.result, null);
  } catch (e) {
    stack.dumpLogs();
    throw e;
  } finally {
    await stack.stop();
  }
});
