// SPDX-License-Identifier: MIT
// `genapi-broker check -c FILE` and `genapi-gateway check -c FILE` validate without starting
// (docs/operations.md, "Checking a configuration"): a typo in a key is named with its line and
// column (and the option it probably meant), a syntax error with its position, a bad value
// with the option; `--print-config` prints the effective configuration (file, environment,
// flags) as JSON with secrets hidden.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFile } = require('node:child_process');
const { BIN } = require('../support/stack');

function run(prog, args, env = {}) {
  return new Promise((resolve) => {
    const e = { ...process.env, ...env };
    delete e.GENAPI_ADMIN_TOKEN; // the harness's, set for genapi-ctl
    execFile(path.join(BIN, prog), args, { env: e, timeout: 20000 }, (err, stdout, stderr) => {
      resolve({ code: err ? err.code : 0, stdout, stderr });
    });
  });
}

function tmpFile(name, text) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'genapi-check-'));
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

test('gateway check: a typo in a key is named with its line and column; valid and invalid files', async () => {
  const typo = tmpFile('gateway.json', '{\n  "listen": "127.0.0.1:4000",\n  "rate_limtis": {}\n}\n');
  let r = await run('genapi-gateway', ['check', '-c', typo]);
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr, `genapi-gateway: config file ${typo}:3:3: unknown option "rate_limtis" (did you mean "rate_limits"?)\n`);

  const syntax = tmpFile('gateway.json', '{\n  "listen": "127.0.0.1:4000",\n  "max_channels": 4,,\n}\n');
  r = await run('genapi-gateway', ['check', '-c', syntax]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, new RegExp(`config file ${syntax.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3:21: `));

  const range = tmpFile('gateway.json', '{\n  "max_channels": 0\n}\n');
  r = await run('genapi-gateway', ['check', '--config', range]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /max_channels: "0" \(from .*:2:3\) must be an integer in 1\.\.1024/);

  // Checked as at start, beyond the file's syntax: a TLS key without its certificate.
  const tls = tmpFile('gateway.json', '{"tls_key_file": "/nonexistent.pem"}');
  r = await run('genapi-gateway', ['check', '-c', tls]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /tls_cert_file: required with tls_key_file/);

  const limits = tmpFile('gateway.json', '{"rate_limits": {"enabled": true, "global_limits": [{"key": "user_id", "max_requests": 0, "window_ms": 1000}]}}');
  r = await run('genapi-gateway', ['check', '-c', limits]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /rate_limits\.global_limits\[0\]\.max_requests/);

  // A valid file: nothing starts (the port in it may be taken), exit 0.
  const good = tmpFile('gateway.json', '{\n  "listen": "127.0.0.1:1",\n  "log_level": "debug",\n  "auth": "jwt",\n  "jwt_secret": "a-secret-of-sixteen-bytes"\n}\n');
  r = await run('genapi-gateway', ['check', '-c', good]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'genapi-gateway: configuration valid\n');
  assert.equal(r.stderr, '');
});

// The option is detail_errors; an earlier issue spelled it detail_error. Options have no aliases:
// either spelling of a near miss is refused with the name it probably meant, in a file and with
// --set alike (an unknown --set named no option before).
test('gateway: detail_error (not an alias) is refused with did-you-mean detail_errors, in a file and with --set', async () => {
  const file = tmpFile('gateway.json', '{"detail_error": true}');
  let r = await run('genapi-gateway', ['check', '-c', file]);
  assert.equal(r.code, 2);
  assert.equal(r.stderr, `genapi-gateway: config file ${file}:1:2: unknown option "detail_error" (did you mean "detail_errors"?)\n`);
  r = await run('genapi-gateway', ['check', '--set', 'detail_error=true']);
  assert.equal(r.code, 2);
  assert.equal(r.stderr, 'genapi-gateway: --set detail_error=true: unknown option (did you mean "detail_errors"?)\n');
  r = await run('genapi-gateway', ['--set', 'detail_error=true']); // at start, not only in check
  assert.equal(r.code, 2);
  assert.equal(r.stderr, 'genapi-gateway: --set detail_error=true: unknown option (did you mean "detail_errors"?)\n');
  r = await run('genapi-gateway', ['check', '--set', 'no_such_thing=1']);
  assert.equal(r.code, 2);
  assert.equal(r.stderr, 'genapi-gateway: --set no_such_thing=1: unknown option (see --help)\n');
  // The right name is taken.
  r = await run('genapi-gateway', ['--set', 'detail_errors=true', '--print-config']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).detail_errors, true);
});

test('broker check: typo with its line, an unknown admin action, a valid file', async () => {
  const typo = tmpFile('broker.json', '{\n  "heartbeat_ms": 500,\n\n    "admin_actoins": "status"\n}\n');
  let r = await run('genapi-broker', ['check', '-c', typo]);
  assert.equal(r.code, 2);
  assert.equal(r.stderr, `genapi-broker: config file ${typo}:4:5: unknown option "admin_actoins" (did you mean "admin_actions"?)\n`);
  const far = tmpFile('broker.json', '{"no_such_thing": 1}');
  r = await run('genapi-broker', ['check', '-c', far]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /:1:2: unknown option "no_such_thing" \(see --help\)/);
  const actions = tmpFile('broker.json', '{"admin_actions": "status,bogus"}');
  r = await run('genapi-broker', ['check', '-c', actions]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /admin_actions: unknown action \\"bogus\\"/); // a JSON log line
  const exposed = tmpFile('broker.json', '{"worker_endpoint": "tcp://0.0.0.0:5570"}');
  r = await run('genapi-broker', ['check', '-c', exposed]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /worker_endpoint: tcp:\/\/0\.0\.0\.0:5570 listens beyond loopback/);
  const good = tmpFile('broker.json', '{"heartbeat_ms": 500, "admin_token": "t0123456789", "admin_actions": "status"}');
  r = await run('genapi-broker', ['check', '-c', good]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'genapi-broker: configuration valid\n');
});

test('--print-config: file, then environment, then flags, as JSON with secrets hidden', async () => {
  const file = tmpFile('gateway.json', JSON.stringify({
    heartbeat_ms: 700, max_channels: 8, auth: 'jwt', jwt_secret: 'file-secret-0123456789',
    rate_limits: { enabled: true, global_limits: [{ key: 'user_id', max_requests: 5, window_ms: 1000 }] },
  }));
  let r = await run('genapi-gateway', ['-c', file, '--set', 'max_channels=9', '--print-config'],
    { GENAPI_HEARTBEAT_MS: '800', GENAPI_MAX_CHANNELS: '7' });
  assert.equal(r.code, 0, r.stderr);
  const cfg = JSON.parse(r.stdout);
  assert.equal(cfg.heartbeat_ms, 800); // the environment over the file
  assert.equal(cfg.max_channels, 9); // the flag over both
  assert.equal(cfg.auth, 'jwt');
  assert.equal(cfg.jwt_secret, '(hidden)');
  assert.equal(cfg.jwt_issuer, '');
  assert.deepEqual(cfg.rate_limits.global_limits, [{ key: 'user_id', max_requests: 5, window_ms: 1000 }]);
  assert.equal(cfg.shutdown_timeout_ms, 10000);
  assert.ok(!r.stdout.includes('file-secret'));

  // A variable one letter away from an option is most likely that option misspelt: it is named
  // (it changes nothing); another program's or tool's variable is left alone.
  r = await run('genapi-gateway', ['--print-config'], { GENAPI_MAX_CHANELS: '7', GENAPI_BROKER_ADMIN: 'x' });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).max_channels, 16); // the default: the misspelt one is ignored
  const warned = r.stderr.split('\n').filter((l) => l.includes('GENAPI_'));
  assert.equal(warned.length, 1, r.stderr);
  assert.match(warned[0], /the environment's GENAPI_MAX_CHANELS is no option of genapi-gateway and is ignored \(did you mean GENAPI_MAX_CHANNELS\?\)/);

  r = await run('genapi-broker', ['--print-config', '--set', 'admin_token=broker-admin-secret'],
    { GENAPI_PUSH_TOKEN: 'push-secret-value' });
  assert.equal(r.code, 0, r.stderr);
  const b = JSON.parse(r.stdout);
  assert.equal(b.admin_token, '(hidden)');
  assert.equal(b.push_token, '(hidden)');
  assert.equal(b.curve_secret_file, '');
  assert.equal(b.worker_endpoint, 'tcp://127.0.0.1:5570');
  assert.ok(!/broker-admin-secret|push-secret-value/.test(r.stdout));
});
