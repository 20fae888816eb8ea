// SPDX-License-Identifier: MIT
// The containers as users run them (docs/operations.md, "Containers"): the Dockerfile built with
// podman, compose.yaml brought up with podman-compose (a broker, two gateways, the example
// services, host networking on ports no other test uses), calls through both containerised
// gateways with the phoenix client, the broker crashing (its restart policy brings it back) and
// its container killed and started again (the system recovers by itself both times), then a
// stop in which every container exits 0 on SIGTERM, and compose down. Each step is a subtest,
// so its time shows in the report. Run by `make test-containers` (part of `make test`); skipped,
// saying why, only when the container runtime cannot start at all.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const net = require('node:net');
const path = require('node:path');
const { connect, join, call, eventually } = require('../support/stack');

const ROOT = path.resolve(__dirname, '..', '..');
const PROJECT = 'genapictest';
const IMAGE = 'localhost/genapi:test';
const BASE_IMAGE = 'docker.io/library/debian:bookworm';
// podman with the project's settings (runc, container ulimits) from a private config file, so
// the machine's own configuration is left alone.
const ENV = {
  ...process.env,
  CONTAINERS_CONF: path.join(ROOT, 'tools', 'containers', 'containers.conf'),
  GENAPI_IMAGE: IMAGE,
  GENAPI_ADMIN_TOKEN: `containers-test-${process.pid}-${Date.now()}`,
};
const COMPOSE = ['--podman-path', path.join(ROOT, 'tools', 'containers', 'podman-hostnet'),
  '-p', PROJECT, '-f', path.join(ROOT, 'compose.yaml')];
const LONG_RUNNING = ['broker', 'gateway1', 'gateway2', 'user_service', 'blog_service',
  'search_service', 'admin_service', 'report_service', 'event_service', 'versioned_user_service',
  'hooks_service', 'data_node1', 'data_node2', 'data_node3'];
const container = (service) => `${PROJECT}_${service}_1`;

// Runs a command; resolves {code, out} (stdout and stderr together), never rejects.
function run(cmd, args, { timeoutMs = 120000, input = null } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: ROOT, env: ENV, stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d.toString(); });
    child.stderr.on('data', (d) => { out += d.toString(); });
    const timer = setTimeout(() => { out += `\n(killed after ${timeoutMs} ms)`; child.kill('SIGKILL'); }, timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); resolve({ code: -1, out: `${out}${e.message}` }); });
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, out }); });
    if (input) child.stdin.end(input);
  });
}

// Like run, but fails the step with the command's output when it exits non-zero.
async function must(cmd, args, opts) {
  const r = await run(cmd, args, opts);
  assert.equal(r.code, 0, `${cmd} ${args.join(' ')} exited ${r.code}:\n${r.out.slice(-6000)}`);
  return r.out;
}

const podman = (...args) => must('podman', args);
const inspect = async (service, format) => (await podman('inspect', '-f', format, container(service))).trim();

// A free TCP port (bound, read, released): the compose ports, so that nothing this test starts
// meets `make run` (4000, 5570...) or another test.
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '0.0.0.0', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// One call through the gateway on `port` over `channel`: user_service.get_user (the
// walkthrough's step 7) and data_service.get_data (section 9, one of the three nodes).
async function walkthroughCalls(channel, tag) {
  const user = await call(channel, { service: 'user_service', request_type: 'get_user',
    request_id: `${tag}_user_${Date.now()}`, args: { user_id: '1' } });
  if (!user.success) return false;
  assert.deepEqual(user.result, { id: '1', name: 'Alice', email: 'alice@example.com' });
  const data = await call(channel, { service: 'data_service', request_type: 'get_data',
    request_id: `${tag}_data_${Date.now()}` });
  if (!data.success) return false;
  assert.match(data.result.node, /^node[123]$/);
  return true;
}

test('containers: build, compose up, calls through both gateways, broker killed, stop', { timeout: 20 * 60 * 1000 }, async (t) => {
  for (const tool of [['podman', ['info', '--format', '{{.Host.OCIRuntime.Name}}']], ['podman-compose', ['version']]]) {
    const r = await run(tool[0], tool[1]);
    if (r.code !== 0) {
      t.skip(`the container runtime cannot start: \`${tool[0]} ${tool[1][0]}\` failed (${r.code}): ` +
        `${r.out.trim().split('\n').slice(-3).join(' | ')} (tools/install-deps.sh installs podman ` +
        'podman-compose runc debootstrap)');
      return;
    }
  }

  const ports = {};
  for (const v of ['GATEWAY1_PORT', 'GATEWAY2_PORT', 'GATEWAY1_METRICS_PORT', 'GATEWAY2_METRICS_PORT',
    'BROKER_METRICS_PORT', 'BROKER_WORKER_PORT', 'BROKER_GATEWAY_PORT', 'STREAM_IN_PORT', 'STREAM_OUT_PORT']) {
    ports[v] = String(await freePort());
  }
  Object.assign(ENV, ports);
  const compose = (...args) => must('podman-compose', [...COMPOSE, ...args], { timeoutMs: 300000 });
  const sockets = [];
  let failed = null;
  let skipped = null;
  // One step: a subtest, skipped once an earlier one failed or found no runtime.
  const step = async (name, fn) => {
    if (failed || skipped) {
      await t.test(name, { skip: skipped || `an earlier step failed (${failed})` }, () => {});
      return;
    }
    await t.test(name, async (st) => {
      try {
        await fn(st);
      } catch (e) {
        failed = name;
        throw e;
      }
    });
  };
  const dumpLogs = async () => {
    for (const s of ['broker', 'gateway1', 'gateway2', 'user_service', 'data_node1']) {
      const r = await run('podman', ['logs', '--tail', '30', container(s)]);
      console.error(`----- ${container(s)} -----\n${r.out}`);
    }
  };

  try {
    await step('base image (debootstrap when podman has none)', async () => {
      await must(path.join(ROOT, 'tools', 'containers', 'base-image.sh'), [], { timeoutMs: 900000 });
      await must('podman', ['image', 'exists', BASE_IMAGE]);
    });

    await step('the runtime starts a container', async (st) => {
      const r = await run('podman', ['run', '--rm', '--network', 'host', '--init', BASE_IMAGE, 'true']);
      if (r.code !== 0) {
        skipped = `the container runtime cannot start a container: ${r.out.trim().split('\n').slice(-3).join(' | ')}`;
        st.skip(skipped);
      }
    });

    await step('image build (Dockerfile)', async () => {
      await must('podman', ['build', '--quiet', '-t', IMAGE, '.'], { timeoutMs: 900000 });
      const user = await must('podman', ['run', '--rm', IMAGE, 'id', '-un']);
      assert.equal(user.trim(), 'genapi', 'the image runs as its non-root user');
    });

    // Leftovers of an interrupted earlier run would make `up` fail on the container names.
    await run('podman-compose', [...COMPOSE, 'down', '-v'], { timeoutMs: 300000 });

    await step('compose up', async () => {
      await compose('up', '-d');
      assert.equal(await inspect('keygen', '{{.State.ExitCode}}'), '0');
      for (const s of LONG_RUNNING) {
        assert.equal(await inspect(s, '{{.State.Status}}'), 'running', `${container(s)} is running`);
      }
    });

    await step('health checks pass (podman healthcheck run)', async () => {
      // No systemd here, so podman runs health checks only when asked.
      for (const s of ['broker', 'gateway1', 'gateway2']) {
        await eventually(async () => (await run('podman', ['healthcheck', 'run', container(s)])).code === 0, 30000, 500);
      }
    });

    const channels = {};
    await step('calls through both containerised gateways', async () => {
      for (const g of ['GATEWAY1_PORT', 'GATEWAY2_PORT']) {
        const socket = connect(`ws://127.0.0.1:${ports[g]}/socket`);
        sockets.push(socket);
        channels[g] = (await join(socket)).channel;
        // The workers register as they come up: the first calls may find a service missing.
        await eventually(() => walkthroughCalls(channels[g], g), 30000, 250);
      }
    });

    await step('genapi-ctl status with the operator key from the keys volume', async () => {
      const keys = '/var/lib/genapi/keys';
      const out = await must('podman', ['run', '--rm', '--network', 'host', '-v', `${PROJECT}_keys:${keys}:ro`,
        '-e', `GENAPI_CURVE_SECRET_FILE=${keys}/peers/operator`, '-e', `GENAPI_CURVE_BROKER_FILE=${keys}/broker`,
        '-e', `GENAPI_ADMIN_TOKEN=${ENV.GENAPI_ADMIN_TOKEN}`, IMAGE,
        'genapi-ctl', 'status', '--broker', `tcp://127.0.0.1:${ports.BROKER_GATEWAY_PORT}`]);
      for (const w of ['user_service', 'node1', 'node2', 'node3', 'hooks_service']) assert.match(out, new RegExp(w));
    });

    await step('the broker crashes: its restart policy brings it back, calls work again', async () => {
      const started = await inspect('broker', '{{.State.StartedAt}}');
      // SIGKILL to the broker itself (the child of the container's init), as a crash would.
      const initPid = Number(await inspect('broker', '{{.State.Pid}}'));
      const children = (await must('cat', [`/proc/${initPid}/task/${initPid}/children`])).trim().split(/\s+/);
      assert.equal(children.length, 1, `one process under the init: ${children}`);
      process.kill(Number(children[0]), 'SIGKILL');
      await eventually(async () => (await inspect('broker', '{{.State.StartedAt}}')) !== started &&
        (await inspect('broker', '{{.State.Status}}')) === 'running', 30000, 250);
      assert.ok(Number(await inspect('broker', '{{.RestartCount}}')) >= 1);
      for (const g of ['GATEWAY1_PORT', 'GATEWAY2_PORT']) {
        await eventually(() => walkthroughCalls(channels[g], `${g}_crash`), 30000, 250);
      }
    });

    await step('the broker container killed: calls fail, then work again once it is started', async () => {
      await podman('kill', container('broker'));
      await podman('wait', container('broker'));
      assert.ok(['exited', 'stopped'].includes(await inspect('broker', '{{.State.Status}}')));
      const down = await call(channels.GATEWAY1_PORT, { service: 'user_service', request_type: 'get_user',
        request_id: `down_${Date.now()}`, args: { user_id: '1' } }, 15000);
      assert.equal(down.success, false);
      assert.ok(['Service unavailable', 'Request timed out'].includes(down.error), down.error);
      // The gateways' health checks (/readyz) fail while the broker is away.
      await eventually(async () => (await run('podman', ['healthcheck', 'run', container('gateway2')])).code !== 0, 30000, 500);
      await podman('start', container('broker'));
      for (const g of ['GATEWAY1_PORT', 'GATEWAY2_PORT']) {
        await eventually(() => walkthroughCalls(channels[g], `${g}_back`), 30000, 250);
        // A connection made after the restart too.
        const socket = connect(`ws://127.0.0.1:${ports[g]}/socket`);
        sockets.push(socket);
        const { channel } = await join(socket);
        await eventually(() => walkthroughCalls(channel, `${g}_new`), 30000, 250);
      }
      await eventually(async () => (await run('podman', ['healthcheck', 'run', container('gateway2')])).code === 0, 30000, 500);
    });

    await step('compose stop: every container exits 0 on SIGTERM within the grace period', async () => {
      for (const s of sockets) s.disconnect();
      sockets.length = 0;
      // podman-compose 1.0.3 ignores stop_grace_period: the grace is given here (docs/operations.md).
      await compose('stop', '-t', '30');
      const codes = {};
      for (const s of LONG_RUNNING) codes[s] = await inspect(s, '{{.State.ExitCode}}');
      assert.deepEqual(codes, Object.fromEntries(LONG_RUNNING.map((s) => [s, '0'])));
    });
  } catch (e) {
    failed = failed || e.message;
    throw e;
  } finally {
    for (const s of sockets) s.disconnect();
    if (failed) await dumpLogs();
    if (!skipped) {
      await t.test('compose down', async () => {
        await compose('down', '-v');
        // podman-compose 1.0.3 makes a network for the project even though no container joins it.
        await run('podman', ['network', 'rm', `${PROJECT}_default`]);
      });
    }
  }
  if (skipped) t.skip(skipped);
});
