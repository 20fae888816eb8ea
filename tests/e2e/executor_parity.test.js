// SPDX-License-Identifier: MIT
// The executor (executor/include/genapi/executor.h, docs/testing.md) gives the same response
// objects as a live gateway: the same requests to test_service, once through broker + gateway +
// genapi-test-worker over a WebSocket, once in-process (genapi-test-worker --executor, the same
// function table), compared field by field: a success, each kind of refusal (request fields,
// unknown function, arguments, permission, permission callback, rate limit), a handler error,
// an async call, streams, and before and after hooks. (The `ip` field of a request line is the
// executor's caller address, the gateway's peer address; the gateway ignores it in a payload.)
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { BIN, startStack, connect, join, call, waitForPushes } = require('../support/stack');

const RATE_LIMITS = JSON.stringify({
  enabled: true,
  api_limits: [{ service: 'test_service', request_type: 'echo', key: 'value', max_requests: 2, window_ms: 60000 }],
});

const S = 'test_service';
const REQUESTS = [
  { request_id: 'ok', service: S, request_type: 'echo', args: { value: { a: 1 } } },
  { request_id: 'handler_error', service: S, request_type: 'fail' },
  { request_id: 'missing_arg', service: S, request_type: 'slow_async', args: {} },
  { request_id: 'bad_arg', service: S, request_type: 'count', args: { n: 'x' } },
  { request_id: 'unknown', service: S, request_type: 'no_such_function' },
  { request_id: 'missing_field', service: S },
  { request_id: 'withdrawn', service: S, request_type: 'late' }, // declared, not offered
  { request_id: 'denied', service: S, request_type: 'whoami' },
  { request_id: 'callback_denied', service: S, request_type: 'guarded_async', args: { value: 'closed' } },
  { request_id: 'callback_allowed', service: S, request_type: 'guarded_async', args: { value: 'open' } },
  { request_id: 'async', service: S, request_type: 'slow_async', args: { ms: 1 } },
  { request_id: 'stream', service: S, request_type: 'count', args: { n: 3 } },
  { request_id: 'guarded_stream', service: S, request_type: 'guarded_stream', args: { value: 'open', n: 2 } },
  // Hooks: a before hook replacing the args (seeing the request and its extra args), refusing,
  // answering invalid args, crashing; an after hook on a sync and an async call; a stream's.
  { request_id: 'hook_modify', service: S, request_type: 'hooked', args: { value: 1, mode: 'modify' }, ip: '127.0.0.1' },
  { request_id: 'hook_refuse', service: S, request_type: 'hooked', args: { value: 1, mode: 'refuse' } },
  { request_id: 'hook_invalid', service: S, request_type: 'hooked', args: { value: 1, mode: 'invalid' } },
  { request_id: 'hook_crash', service: S, request_type: 'hooked', args: { value: 1, mode: 'crash' } },
  { request_id: 'hook_async', service: S, request_type: 'hooked_async', args: { value: 2 } },
  { request_id: 'hook_stream', service: S, request_type: 'hooked_stream', args: {} },
  { request_id: 'limited_1', service: S, request_type: 'echo', args: { value: 'limited' } },
  { request_id: 'limited_2', service: S, request_type: 'echo', args: { value: 'limited' } },
  { request_id: 'limited_3', service: S, request_type: 'echo', args: { value: 'limited' } },
];

const FINAL = ['result', 'error', 'last', 'end'];

// retry_after_ms depends on when the call came: compared as present and positive.
const normalize = (r) => {
  const out = { ...r };
  if ('retry_after_ms' in out) out.retry_after_ms = out.retry_after_ms > 0;
  return out;
};

// Every response to each request through the gateway, in order.
async function throughGateway() {
  const stack = await startStack({ workers: ['genapi-test-worker'], gatewayArgs: ['--set', `rate_limits=${RATE_LIMITS}`] });
  try {
    const { channel } = await join(connect(stack.url, {}, stack));
    const all = {};
    for (const req of REQUESTS) {
      const first = await call(channel, req);
      all[req.request_id] = [first];
      if (first.kind === 'ack') {
        const pushes = await waitForPushes(channel, (p) => p.some((x) => x.request_id === req.request_id && FINAL.includes(x.kind)));
        // With the default delivery (reply and push) the ack is pushed too: it is the reply.
        all[req.request_id].push(...pushes.filter((x) => x.request_id === req.request_id && x.kind !== 'ack'));
      }
    }
    return all;
  } finally {
    await stack.stop();
  }
}

// Every response to each request in-process.
function inProcess() {
  return new Promise((resolve, reject) => {
    const child = execFile(path.join(BIN, 'genapi-test-worker'), ['--executor', RATE_LIMITS],
      { timeout: 60000 }, (err, stdout) => {
        if (err) return reject(err);
        const all = {};
        for (const line of stdout.split('\n')) {
          if (!line.startsWith('RESPONSE ')) continue;
          const r = JSON.parse(line.slice(9));
          (all[r.request_id] = all[r.request_id] || []).push(r);
        }
        resolve(all);
      });
    child.stdin.end(REQUESTS.map((r) => JSON.stringify(r)).join('\n') + '\n');
  });
}

test('the executor answers like a live gateway, field by field', async () => {
  const local = await inProcess();
  const remote = await throughGateway();
  for (const req of REQUESTS) {
    const id = req.request_id;
    assert.ok(remote[id] && remote[id].length > 0, `${id}: the gateway answered`);
    assert.deepEqual((local[id] || []).map(normalize), remote[id].map(normalize), `${id}: same responses`);
  }
  // The cases are what they claim to be.
  assert.equal(remote.ok[0].success, true);
  assert.equal(remote.missing_arg[0].error, 'Missing required argument: ms');
  assert.equal(remote.denied[0].error, 'Permission denied');
  assert.equal(remote.withdrawn[0].error, 'Unknown function');
  assert.equal(remote.callback_denied[0].error, 'Permission denied: value is not open');
  assert.equal(remote.limited_3[0].error, 'Rate limit exceeded');
  assert.deepEqual(remote.async.map((r) => r.kind), ['ack', 'result']);
  assert.deepEqual(remote.stream.map((r) => r.kind), ['ack', 'chunk', 'chunk', 'chunk', 'end']);
  assert.equal(remote.hook_refuse[0].error, 'refused by the before hook');
  assert.equal(remote.hook_modify[0].result.hook, 'after');
  assert.match(remote.hook_modify[0].result.wrapped.tag, /x=7 user=none ip=set/);
});
