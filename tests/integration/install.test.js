// SPDX-License-Identifier: MIT
// `make install` (docs/operations.md, "Installing"): the build's install rules into a temporary
// DESTDIR, then an example service built outside the repository with nothing but
// `cc my_service.c $(pkg-config --cflags --libs genapi-worker)`, run against a broker until it
// registers, and stopped with SIGTERM (exit 0); the installed programs run.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFile, spawn } = require('node:child_process');
const { BIN, startBroker, eventually } = require('../support/stack');

const ROOT = path.resolve(__dirname, '..', '..');

function run(cmd, args, opts = {}) {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 120000, ...opts }, (err, stdout, stderr) => {
      resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr });
    });
  });
}

test('make install into a DESTDIR; a service outside the repository builds with pkg-config and serves', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'genapi-install-'));
  const destdir = path.join(tmp, 'root');
  const prefix = path.join(destdir, 'usr', 'local');
  let broker;
  let svc;
  try {
    const inst = await run('cmake', ['--install', path.dirname(BIN), '--prefix', '/usr/local'],
      { env: { ...process.env, DESTDIR: destdir } });
    assert.equal(inst.code, 0, inst.stderr + inst.stdout);
    for (const f of ['bin/genapi-broker', 'bin/genapi-gateway', 'bin/genapi-ctl', 'include/genapi/worker.h',
      'lib/pkgconfig/genapi-worker.pc', 'lib/libgenapi-worker.so']) {
      assert.ok(fs.existsSync(path.join(prefix, f)), `${f} installed`);
    }
    const check = await run(path.join(prefix, 'bin', 'genapi-broker'), ['check']);
    assert.equal(check.code, 0, check.stderr);

    // The example service, copied out of the repository, built by pkg-config alone.
    const work = path.join(tmp, 'service');
    fs.mkdirSync(work);
    fs.copyFileSync(path.join(ROOT, 'worker', 'examples', 'user_service.c'), path.join(work, 'my_service.c'));
    const env = { ...process.env, PKG_CONFIG_PATH: path.join(prefix, 'lib', 'pkgconfig') };
    const cc = await run('sh', ['-c', 'cc my_service.c $(pkg-config --cflags --libs genapi-worker) -o my_service'],
      { cwd: work, env });
    assert.equal(cc.code, 0, cc.stderr);

    broker = await startBroker();
    svc = spawn(path.join(work, 'my_service'), ['--set', `broker=${broker.endpoints.workers}`, '--set', 'heartbeat_ms=200'],
      { env: { ...process.env, LD_LIBRARY_PATH: path.join(prefix, 'lib') }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    svc.stdout.on('data', (d) => { out += d; });
    svc.stderr.on('data', (d) => { err += d; });
    const exited = new Promise((resolve) => svc.on('exit', (code, signal) => resolve({ code, signal })));
    await eventually(() => /^READY worker user_service@\S+ /m.test(out), 10000, 20);
    await eventually(() => /worker user_service@\S+ registered for user_service/.test(broker.stderr), 5000, 20);
    svc.kill('SIGTERM');
    assert.deepEqual(await exited, { code: 0, signal: null }, err);
    svc = null;
  } finally {
    if (svc) svc.kill('SIGKILL');
    if (broker) await broker.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
