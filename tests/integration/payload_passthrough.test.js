// SPDX-License-Identifier: MIT
// The broker routes by the envelope and passes the payload frame on untouched (docs/protocol.md,
// "Frames"): raw peers (genapi-test-peer) play the gateway and the workers around a real broker.
// The CALL's payload holds values the broker could not re-encode identically if it decoded them
// (a float32, a bin, a str8 header for a 3-byte string, a uint16 holding 5): each worker gets
// exactly those bytes, on the first attempt and on a retry to a second worker, and a worker's
// result payload reaches the gateway byte for byte. Peers of protocol versions 1 (one body, no
// payload frame), 2 (tag and command in two frames), 3 (tag and command in one frame, the
// envelope in the next) and 4 (the head frame of today, a batch's items as frames of their
// own) are refused and named in the broker's log, never misparsed.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { Proc, startBroker } = require('../support/stack');

// {f: float32 1.5, b: bin 00 ff, s: str8 "abc", i: uint16 5}
const ODD = '84a166ca3fc00000a162c40200ffa173d903616263a169cd0005';

function register(node, retry) {
  return JSON.stringify({ node, service: 'raw_service', config_version: '1', session: 1,
    functions: [{ service: 'raw_service', request_type: 'echo', timeout: 5000, ...(retry ? { retry } : {}) }] });
}

function worker(broker, node, reply, retry) {
  return new Proc('genapi-test-peer', ['--connect', broker.endpoints.workers, '--answer-heartbeats',
    '--reply', reply, '--listen', '20000', '--send', 'REGISTER', register(node, retry)]);
}

function gateway(broker) {
  const call = JSON.stringify({ id: 5, service: 'raw_service', request_type: 'echo', request_id: 'odd-1' });
  return new Proc('genapi-test-peer', ['--connect', broker.endpoints.gateways, '--answer-heartbeats',
    '--listen', '15000', '--send', 'HELLO', '{"name":"raw"}', '--send', 'CALL', call, '--payload', ODD]);
}

// The PAYLOAD line right after the first line matching `re`.
async function payloadAfter(peer, re) {
  const { index } = await peer.waitForLine(re, 10000);
  const { match } = await peer.waitForLine(/^PAYLOAD ([0-9a-f]*)$/, 5000, index + 1);
  return match[1];
}

test('a retried call carries the same payload bytes to each worker', async () => {
  const broker = await startBroker();
  const a = worker(broker, 'node_a', 'retryable', 2);
  const b = worker(broker, 'node_b', 'retryable', 2);
  let gw = null;
  try {
    await a.waitForLine(/^RECV REGISTERED .*"ok":true/);
    await b.waitForLine(/^RECV REGISTERED .*"ok":true/);
    gw = gateway(broker);
    // Two attempts in all, each on a worker not tried yet: one REQUEST each, same bytes.
    assert.equal(await payloadAfter(a, /^RECV REQUEST /), ODD);
    assert.equal(await payloadAfter(b, /^RECV REQUEST /), ODD);
    const { match } = await gw.waitForLine(/^RECV RESULT (.*)$/);
    const result = JSON.parse(match[1]);
    assert.deepEqual([result.id, result.ok, result.error, result.can_retry], [5, false, 'try another node', false]);
    assert.equal(a.lines.filter((l) => l.startsWith('RECV REQUEST ')).length, 1);
    assert.equal(b.lines.filter((l) => l.startsWith('RECV REQUEST ')).length, 1);
  } catch (e) {
    console.error(`----- broker -----\n${broker.stderr}`);
    throw e;
  } finally {
    for (const p of [a, b, gw]) if (p) p.kill('SIGKILL');
    await broker.stop();
  }
});

test('the args reach the worker and its result the gateway byte for byte', async () => {
  const broker = await startBroker();
  const w = worker(broker, 'node_echo', 'echo', 0);
  let gw = null;
  try {
    await w.waitForLine(/^RECV REGISTERED .*"ok":true/);
    gw = gateway(broker);
    assert.equal(await payloadAfter(w, /^RECV REQUEST /), ODD);
    // The worker sends the REQUEST's payload frame back as its result.
    const { index, match } = await gw.waitForLine(/^RECV RESULT (.*)$/);
    const result = JSON.parse(match[1]);
    assert.deepEqual([result.id, result.ok], [5, true]);
    assert.deepEqual([result.result.f, result.result.s, result.result.i], [1.5, 'abc', 5]);
    const payload = await gw.waitForLine(/^PAYLOAD ([0-9a-f]*)$/, 5000, index + 1);
    assert.equal(payload.match[1], ODD);
  } catch (e) {
    console.error(`----- broker -----\n${broker.stderr}`);
    throw e;
  } finally {
    for (const p of [w, gw]) if (p) p.kill('SIGKILL');
    await broker.stop();
  }
});

for (const version of [1, 2, 3, 4]) {
  test(`a peer of protocol version ${version} is refused and named in the log`, async () => {
    const broker = await startBroker();
    const stale = new Proc('genapi-test-peer', ['--connect', broker.endpoints.workers, '--version', String(version),
      '--listen', '1500', '--send', 'REGISTER', register(`node_v${version}`, 0)]);
    let fresh = null;
    try {
      await stale.exitPromise;
      assert.equal(stale.exited.code, 0);
      assert.ok(!stale.lines.some((l) => l.startsWith('RECV REGISTERED')), stale.lines.join('\n'));
      assert.match(broker.stderr,
        new RegExp(`a worker peer speaks protocol version ${version}, this broker speaks 5: upgrade it`));
      // The broker goes on serving peers of its own version.
      fresh = worker(broker, 'node_v5', 'echo', 0);
      await fresh.waitForLine(/^RECV REGISTERED .*"ok":true/);
    } catch (e) {
      console.error(`----- broker -----\n${broker.stderr}`);
      throw e;
    } finally {
      if (fresh) fresh.kill('SIGKILL');
      await broker.stop();
    }
  });
}

test('the envelope pairs the broker does not route by reach the worker and the gateway byte for byte', async () => {
  const broker = await startBroker();
  const w = new Proc('genapi-test-peer', ['--connect', broker.endpoints.workers, '--answer-heartbeats',
    '--reply', 'echo', '--listen', '15000', '--print-envelopes', '--send', 'REGISTER', register('node_env', 0)]);
  let gw = null;
  // {id: 5, service: "raw_service", request_type: "echo", request_id: str8 "odd-2", f: float32 1.5,
  //  rate_limit: {}}: the CALL envelope as a gateway in another language might encode it.
  const hex = (s) => Buffer.from(s).toString('hex');
  const kept = 'a7' + hex('service') + 'ab' + hex('raw_service') + 'ac' + hex('request_type') + 'a4' + hex('echo') +
    'aa' + hex('request_id') + 'd905' + hex('odd-2') +
    'a166ca3fc00000';
  const envelope = '86a26964cd0005' + kept + 'aa' + hex('rate_limit') + '80';
  try {
    await w.waitForLine(/^RECV REGISTERED .*"ok":true/);
    gw = new Proc('genapi-test-peer', ['--connect', broker.endpoints.gateways, '--answer-heartbeats',
      '--listen', '15000', '--print-envelopes', '--send', 'HELLO', '{"name":"raw"}',
      '--send', 'CALL', '{}', '--envelope', envelope, '--payload', ODD]);
    // The REQUEST: the pairs as they came, without rate_limit, then the broker's id and the
    // deadline.
    const { index } = await w.waitForLine(/^RECV REQUEST /, 10000);
    const req = (await w.waitForLine(/^ENVELOPE ([0-9a-f]*)$/, 5000, index + 1)).match[1];
    assert.ok(req.startsWith(`86${kept}a26964`), req);
    assert.match(req.slice(2 + kept.length), /^a26964[0-9a-f]+a8646561646c696e65cf[0-9a-f]{16}$/);
    // The RESULT: the REPLY's envelope with the gateway's id in place, its float32 pair intact.
    const res = await gw.waitForLine(/^RECV RESULT (.*)$/);
    assert.deepEqual(JSON.parse(res.match[1]).id, 5);
    const env = await gw.waitForLine(/^ENVELOPE ([0-9a-f]*)$/, 5000, res.index + 1);
    assert.equal(env.match[1], '83a2696405a26f6bc3a46e6f7465ca3fc00000');
  } catch (e) {
    console.error(`----- broker -----\n${broker.stderr}`);
    throw e;
  } finally {
    for (const p of [w, gw]) if (p) p.kill('SIGKILL');
    await broker.stop();
  }
});
