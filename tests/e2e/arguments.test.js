// SPDX-License-Identifier: MIT
// The walkthrough's section 2 examples as a client sees them: blog_service.create_post (the
// extended format) and search_service.search (map-style with defaults).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { startStack, connect, join, call } = require('../support/stack');

test('extended-format and map-style arguments', async () => {
  const stack = await startStack({ workers: ['blog_service', 'search_service'] });
  try {
    const { channel } = await join(connect(stack.url, {}, stack));
    const post = (args) => call(channel, { request_id: `p${Math.random()}`, service: 'blog_service', request_type: 'create_post', args });
    const good = { title: 'Hello', body: 'World', tags: ['c', 'zmq'], metadata: { author: 'ana', category: 'tech' } };
    let r = await post(good);
    assert.equal(r.success, true);
    assert.equal(r.result.published, false); // default_value applied
    assert.deepEqual(r.result.tags, ['c', 'zmq']);

    const refusals = [
      [{ ...good, title: 'é'.repeat(101) }, 'Argument title exceeds max_bytes 200'],
      [{ ...good, tags: Array(11).fill('t') }, 'Argument tags exceeds max_items 10'],
      [{ ...good, tags: ['x'.repeat(51)] }, 'Argument tags item 0 exceeds max_item_bytes 50'],
      [{ ...good, metadata: { category: 'x' } }, 'Argument metadata is missing required keys: author'],
      [{ ...good, metadata: { author: 'a', color: 'red' } }, 'Argument metadata has keys that are not accepted: color'],
      [{ ...good, published: 'yes' }, 'Invalid type for argument published: expected boolean'],
      [{ ...good, published: null }, 'Invalid type for argument published: expected boolean'],
      [{ body: 'b', tags: [], metadata: { author: 'a' } }, 'Missing required argument: title'],
    ];
    for (const [args, error] of refusals) {
      r = await post(args);
      assert.deepEqual([r.success, r.error], [false, error]);
    }

    r = await call(channel, { request_id: 's1', service: 'search_service', request_type: 'search', args: { query: 'phoenix' } });
    assert.deepEqual(r.result, { query: 'phoenix', limit: 20, offset: 0, results: ['Phoenix channels over WebSocket'] });
    r = await call(channel, { request_id: 's2', service: 'search_service', request_type: 'search', args: { query: 'r', limit: 1, offset: 1 } });
    assert.equal(r.result.results.length, 1);
    r = await call(channel, { request_id: 's3', service: 'search_service', request_type: 'search', args: { limit: 5 } });
    assert.equal(r.error, 'Missing required argument: query');
  } finally {
    await stack.stop();
  }
});
