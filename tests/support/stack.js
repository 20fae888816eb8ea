// SPDX-License-Identifier: MIT
// Starts real genapi processes (broker, workers, gateway) on loopback with ephemeral ports,
// waits for their READY lines (never a bare sleep), and stops them with SIGTERM, asserting a
// clean exit (the binaries are built with ASan/UBSan, whose reports make the exit non-zero).
// Also small helpers around the official `phoenix` client.
'use strict';

const { spawn } = require('node:child_process');
const path = require('node:path');
const assert = require('node:assert/strict');
const { Socket } = require('phoenix');
const WebSocket = require('ws');

const ROOT = path.resolve(__dirname, '..', '..');
const BIN = process.env.GENAPI_BIN_DIR || path.join(ROOT, 'build', 'bin');
const HEARTBEAT_MS = 200;
// Every test broker allows the admin operations with this token; genapi-ctl, started by the
// tests, reads it from the environment.
const ADMIN_TOKEN = 'test-admin-token-0123456789';
process.env.GENAPI_ADMIN_TOKEN = ADMIN_TOKEN;

// One child process with line-oriented stdout and a captured stderr.
class Proc {
  constructor(name, args) {
    this.name = name;
    this.lines = [];
    this.stderr = '';
    this.waiters = [];
    this.exited = null;
    this.killedOnPurpose = false;
    this.child = spawn(path.join(BIN, name), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    this.child.stdout.on('data', (d) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        this.lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
        this._wake();
      }
    });
    this.child.stderr.on('data', (d) => {
      this.stderr += d.toString();
      if (this.stderr.length > 200000) this.stderr = this.stderr.slice(-100000);
    });
    this.exitPromise = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exited = { code, signal };
        this._wake();
        resolve(this.exited);
      });
    });
  }

  _wake() {
    for (const w of this.waiters.slice()) w();
  }

  // Resolves with the first line matching `re` at index >= `from` (default: any line so far).
  waitForLine(re, timeoutMs = 10000, from = 0) {
    return new Promise((resolve, reject) => {
      const check = () => {
        for (let i = from; i < this.lines.length; i++) {
          const m = this.lines[i].match(re);
          if (m) {
            done();
            resolve({ match: m, index: i });
            return true;
          }
        }
        if (this.exited) {
          done();
          reject(new Error(`${this.name} exited (${JSON.stringify(this.exited)}) before ${re}\n${this.stderr}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.name}: no line ${re} within ${timeoutMs} ms\n${this.stderr}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
      };
      if (!check()) this.waiters.push(check);
    });
  }

  kill(signal = 'SIGKILL') {
    this.killedOnPurpose = true;
    this.child.kill(signal);
    return this.exitPromise;
  }

  // SIGTERM, then assert exit code 0 within 5 s.
  async stop() {
    if (this.exited) {
      if (!this.killedOnPurpose) {
        assert.equal(this.exited.code, 0, `${this.name} had exited with ${JSON.stringify(this.exited)}\n${this.stderr}`);
      }
      return;
    }
    this.child.kill('SIGTERM');
    let timeout;
    const timer = new Promise((r) => { timeout = setTimeout(() => r(null), 5000); });
    const result = await Promise.race([this.exitPromise, timer]);
    clearTimeout(timeout);
    if (result === null) {
      this.child.kill('SIGKILL');
      await this.exitPromise;
      assert.fail(`${this.name} did not exit within 5 s of SIGTERM\n${this.stderr}`);
    }
    assert.equal(result.code, 0, `${this.name} exited with ${JSON.stringify(result)}\n${this.stderr}`);
  }
}

async function startBroker(opts = {}) {
  const ep = opts.endpoints || {};
  const args = [
    '--set', `worker_endpoint=${ep.workers || 'tcp://127.0.0.1:*'}`,
    '--set', `gateway_endpoint=${ep.gateways || 'tcp://127.0.0.1:*'}`,
    '--set', `stream_in_endpoint=${ep.streamsIn || 'tcp://127.0.0.1:*'}`,
    '--set', `stream_out_endpoint=${ep.streamsOut || 'tcp://127.0.0.1:*'}`,
    '--set', `heartbeat_ms=${opts.heartbeatMs || HEARTBEAT_MS}`,
    '--set', `admin_token=${ADMIN_TOKEN}`, '--set', 'admin_actions=status,functions,stop_stream',
    // Any free port for the admin listener: tests may run beside other brokers.
    '--set', 'metrics_listen=127.0.0.1:0',
    '--set', 'shutdown_timeout_ms=1500', // within stop()'s 5 s
    ...(opts.args || []),
  ];
  const p = new Proc('genapi-broker', args);
  const { match } = await p.waitForLine(
    /^READY broker workers=(\S+) gateways=(\S+) streams_in=(\S+) streams_out=(\S+)/);
  p.endpoints = { workers: match[1], gateways: match[2], streamsIn: match[3], streamsOut: match[4] };
  const metrics = / metrics_port=(\d+)/.exec(match.input);
  p.metricsPort = metrics ? Number(metrics[1]) : 0;
  return p;
}

async function startWorker(name, broker, opts = {}) {
  const args = ['--set', `broker=${broker.endpoints.workers}`, '--set', `heartbeat_ms=${HEARTBEAT_MS}`,
    ...(opts.args || [])];
  const p = new Proc(name, args);
  await p.waitForLine(/^READY worker /);
  return p;
}

async function startGateway(broker, opts = {}) {
  const args = ['--set', `broker=${broker.endpoints.gateways}`, '--set', 'listen=127.0.0.1:0',
    '--set', `heartbeat_ms=${HEARTBEAT_MS}`, '--set', 'metrics_listen=127.0.0.1:0',
    // A stream left open at the end of a test is awaited this long by the drain on SIGTERM,
    // within stop()'s 5 s.
    '--set', 'shutdown_timeout_ms=1500',
    ...(opts.args || [])];
  const p = new Proc('genapi-gateway', args);
  const { match } = await p.waitForLine(/^READY gateway (\S+)/);
  p.url = match[1];
  const metrics = / metrics_port=(\d+)/.exec(match.input);
  p.metricsPort = metrics ? Number(metrics[1]) : 0;
  return p;
}

// A whole stack: broker, the given workers (registered), then the gateway (holding them).
async function startStack({ workers = ['user_service'], gatewayArgs = [], brokerArgs = [] } = {}) {
  const procs = [];
  const stack = { procs, sockets: [] };
  try {
    stack.broker = await startBroker({ args: brokerArgs });
    procs.push(stack.broker);
    stack.workers = [];
    for (const w of workers) {
      const p = await startWorker(w, stack.broker);
      procs.push(p);
      stack.workers.push(p);
    }
    stack.gateway = await startGateway(stack.broker, { args: gatewayArgs });
    procs.push(stack.gateway);
  } catch (e) {
    for (const p of procs) p.kill('SIGKILL');
    throw e;
  }
  stack.url = stack.gateway.url;
  // Starts another gateway against the same broker (stopped with the stack, before the first
  // gateway); resolves with its Proc (its WebSocket URL in .url).
  stack.startGateway = async (args = gatewayArgs) => {
    const g = await startGateway(stack.broker, { args });
    procs.push(g);
    return g;
  };
  // Prints every process's captured stderr (call it when a test fails, to help debugging).
  stack.dumpLogs = () => {
    for (const p of procs) console.error(`----- ${p.name} stderr -----\n${p.stderr}`);
  };
  // Stops every socket and process; asserts clean exits (gateway first, broker last).
  stack.stop = async () => {
    for (const s of stack.sockets) s.disconnect();
    const order = procs.slice().reverse();
    const errors = [];
    for (const p of order) {
      try {
        await p.stop();
      } catch (e) {
        errors.push(e);
      }
    }
    if (errors.length) throw errors[0];
  };
  return stack;
}

// A connected Phoenix socket (the official client over `ws`).
function connect(url, params = {}, stack = null) {
  const socket = new Socket(url, {
    transport: WebSocket,
    params,
    reconnectAfterMs: () => 200,
    rejoinAfterMs: () => 200,
    heartbeatIntervalMs: 5000,
    timeout: 10000,
  });
  socket.connect();
  if (stack) stack.sockets.push(socket);
  return socket;
}

// Joins `topic`; resolves with {channel, reply}, rejects with the error reply.
function join(socket, topic = 'api:lobby', timeoutMs = 5000) {
  const channel = socket.channel(topic, {});
  channel.pushes = [];
  channel.on('api', (payload) => {
    channel.pushes.push(payload);
    for (const w of channel.pushWaiters || []) w();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`join ${topic} timed out`)), timeoutMs);
    channel.join(timeoutMs)
      .receive('ok', (reply) => { clearTimeout(timer); resolve({ channel, reply }); })
      .receive('error', (reply) => { clearTimeout(timer); channel.leave(); reject(Object.assign(new Error('join refused'), { reply })); })
      .receive('timeout', () => { clearTimeout(timer); reject(new Error('join timeout')); });
  });
}

// Resolves when `predicate(pushes)` holds for the channel's "api" pushes.
function waitForPushes(channel, predicate, timeoutMs = 10000) {
  channel.pushWaiters = channel.pushWaiters || [];
  return new Promise((resolve, reject) => {
    const check = () => {
      if (predicate(channel.pushes)) {
        done();
        resolve(channel.pushes);
        return true;
      }
      return false;
    };
    const timer = setTimeout(() => { done(); reject(new Error(`pushes not as expected within ${timeoutMs} ms: ${JSON.stringify(channel.pushes.slice(-5))}`)); }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      channel.pushWaiters = channel.pushWaiters.filter((w) => w !== check);
    };
    if (!check()) channel.pushWaiters.push(check);
  });
}

// Pushes an API request; resolves with the phx_reply's response (status ok).
function call(channel, payload, timeoutMs = 10000) {
  return new Promise((resolve, reject) => {
    channel.push('api', payload, timeoutMs)
      .receive('ok', resolve)
      .receive('error', (r) => reject(Object.assign(new Error(`error reply: ${JSON.stringify(r)}`), { reply: r })))
      .receive('timeout', () => reject(new Error(`no reply to ${JSON.stringify(payload)} within ${timeoutMs} ms`)));
  });
}

// The response keys every response carries (docs/protocol.md, section 1, "Responses").
const RESPONSE_KEYS = ['async', 'can_retry', 'error', 'has_more', 'kind', 'request_id', 'result', 'success'];

function assertResponseShape(r) {
  assert.deepEqual(Object.keys(r).sort(), RESPONSE_KEYS);
}

// Polls `fn` until it resolves truthy (for recovery after restarts), within `timeoutMs`.
async function eventually(fn, timeoutMs = 10000, intervalMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw last || new Error('condition not met in time');
}

// Starts `genapi-ctl tail ARGS...` (env added to the process's): its stdout lines parsed as
// JSON in `lines`, its stderr in `stderr`; `stop()` interrupts it, `attached()` waits for its
// first line (the attach notice), `events(name, pred)` filters the lines by event name.
function startTail(args, env = {}) {
  const p = spawn(path.join(BIN, 'genapi-ctl'), ['tail', ...args], {
    env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const t = { proc: p, lines: [], stderr: '', exited: null };
  let buf = '';
  p.stdout.on('data', (d) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      t.lines.push(JSON.parse(buf.slice(0, i)));
      buf = buf.slice(i + 1);
    }
  });
  p.stderr.on('data', (d) => { t.stderr += d.toString(); });
  t.exit = new Promise((resolve) => p.on('exit', (code, signal) => { t.exited = { code, signal }; resolve(t.exited); }));
  t.stop = async () => { if (!t.exited) { p.kill('SIGINT'); await t.exit; } };
  t.attached = async () => {
    await eventually(() => t.lines.length >= 1 || t.exited, 10000);
    assert.equal(t.exited, null, t.stderr);
    assert.equal(t.lines[0].attached, true);
  };
  t.events = (name, pred = () => true) => t.lines.filter((l) => l.name === name && pred(l));
  return t;
}

module.exports = {
  BIN, HEARTBEAT_MS, ADMIN_TOKEN, Proc, startBroker, startWorker, startGateway, startStack,
  connect, join, call, waitForPushes, assertResponseShape, eventually, startTail,
};
