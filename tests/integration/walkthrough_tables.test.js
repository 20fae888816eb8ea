// SPDX-License-Identifier: MIT
// The example services register exactly the walkthrough's FunConfigs (sections 1 to 6): each
// service's table, read back through the broker as an operator sees it (`genapi-ctl functions
// SERVICE`), is compared field by field with the declarations written below. Also: the
// walkthrough's calls as written work, and a config setting a field nothing acts on yet is
// refused and listed in the failed configs (`genapi-ctl status`).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { execFile, spawn } = require('node:child_process');
const { BIN, startBroker, startWorker, startGateway, startStack, connect, join, call, waitForPushes, eventually } = require('../support/stack');

// The walkthrough's declarations, in its extended argument format. Where the walkthrough elides
// a field (`# ...`) the example's choice is noted. Fields absent here take the documented
// defaults (docs/protocol.md, "Function config"), as in the walkthrough. `nodes: [Node.self()]`,
// `nodes: :local`, `choose_node_mode: :random` and `timeout: 5_000` are the defaults.
const WALKTHROUGH = {
  // Section 1 (and section 3's user_service functions).
  user_service: [
    { request_type: 'list_users', version: '1.0.0', arg_types: null, response_type: 'sync' },
    { request_type: 'get_user', version: '1.0.0', arg_types: { user_id: 'string' }, response_type: 'sync' },
    // Section 3; its handler reads the caller's user id, hence request_info (elided there).
    { request_type: 'get_profile', check_permission: 'any_authenticated', request_info: true },
    { request_type: 'get_user_profile', check_permission: 'arg:user_id', arg_types: { user_id: 'string' } },
  ],
  // Section 2, extended format.
  blog_service: [
    {
      request_type: 'create_post',
      arg_types: {
        title: { type: 'string', max_bytes: 200 },
        body: { type: 'string', max_bytes: 50000 },
        tags: { type: 'list_string', max_items: 10, max_item_bytes: 50 },
        published: { type: 'boolean', default_value: false },
        metadata: { type: 'map', max_items: 50, required: ['author'], accept: ['author', 'category', 'thumbnail'] },
      },
      arg_orders: ['title', 'body', 'tags', 'published', 'metadata'],
      response_type: 'sync',
    },
  ],
  // Section 2, map-style arguments.
  search_service: [
    {
      request_type: 'search',
      arg_types: {
        query: { type: 'string', max_bytes: 500 },
        limit: { type: 'num', default_value: 20 },
        offset: { type: 'num', default_value: 0 },
      },
      arg_orders: 'map',
      response_type: 'sync',
    },
  ],
  // Section 3. Arguments are elided there: delete_user takes the user_id, admin_action the
  // action. MyApp.Permissions.check is admin_service.authorize, a function of the same worker
  // that declares what a gateway sends a permission callback (WK_PERMISSION_CALLBACK_ARGS).
  admin_service: [
    { request_type: 'delete_user', check_permission: 'role:[admin]', arg_types: { user_id: 'string' } },
    {
      request_type: 'admin_action',
      check_permission: false,
      permission_callback: 'admin_service.authorize',
      arg_types: { action: 'string' },
      request_info: true, // its handler reports who performed the action
    },
    {
      request_type: 'authorize',
      arg_types: {
        service: 'string',
        request_type: 'string',
        args: 'map',
        user_id: { type: 'string', allow_nil: true },
        roles: { type: 'list_string', allow_nil: true },
        device_id: { type: 'string', allow_nil: true },
        ip: { type: 'string', allow_nil: true },
      },
      arg_orders: ['service', 'request_type', 'args', 'user_id', 'roles', 'device_id', 'ip'],
      visibility: 'internal', // genapi's own field: only the gateway calls it (not in the walkthrough)
    },
  ],
  // Section 5.
  report_service: [
    {
      request_type: 'generate_report',
      arg_types: { format: { type: 'string', default_value: 'pdf' } },
      arg_orders: ['format'],
      response_type: 'async',
      version: '1.0.0',
    },
  ],
  // Section 6 (event_service.c belongs to the streaming work; its table is the walkthrough's).
  event_service: [
    { request_type: 'stream_events', arg_types: null, response_type: 'stream', version: '1.0.0' },
    { request_type: 'stream_search', arg_types: null, response_type: 'stream', version: '1.0.0' },
  ],
  // Section 8, served as versioned_user_service (docs/walkthrough.md, section 8): two versions
  // of get_user side by side.
  versioned_user_service: [
    { request_type: 'get_user', version: '1.0.0', arg_types: { id: 'string' }, response_type: 'sync' },
    {
      request_type: 'get_user',
      version: '2.0.0',
      arg_types: { id: 'string', fields: { type: 'list_string', max_items: 10 } },
      arg_orders: ['id', 'fields'],
      response_type: 'sync',
    },
  ],
  // Section 9 (no arguments, sync; `nodes` is left to the workers of the service that run).
  // Section 11's functions with their hooks (MyApp.Hooks is hooks_service). process_data
  // declares the argument enrich_request adds (`enriched`) and the caller's `data`: the args a
  // before hook gives are validated against the declaration (docs/protocol.md, "Hooks").
  data_service: [
    { request_type: 'get_data', response_type: 'sync' },
    {
      request_type: 'expensive_operation',
      arg_types: null,
      response_type: 'sync',
      before_execute: 'hooks_service.validate_quota',
      after_execute: 'hooks_service.log_response',
      hook_timeout: 5000,
    },
    {
      request_type: 'process_data',
      arg_types: { data: { type: 'any', allow_nil: true }, enriched: { type: 'boolean', default_value: false } },
      arg_orders: ['data', 'enriched'],
      before_execute: { function: 'hooks_service.enrich_request', args: ['extra_value', 42] },
      response_type: 'sync',
    },
  ],
  // Section 11's MyApp.Hooks: each declares what the gateway sends a hook (WK_HOOK_ARGS).
  hooks_service: ['validate_quota', 'log_response', 'enrich_request'].map((request_type) => ({
    request_type,
    arg_types: {
      hook: 'string',
      request: 'map',
      config: 'map',
      extra: { type: 'any', allow_nil: true },
      result: { type: 'any', allow_nil: true },
    },
    arg_orders: ['hook', 'request', 'config', 'extra', 'result'],
    visibility: 'internal', // genapi's own field: only the gateway calls them (not in the walkthrough)
  })),
};

// A config with every default filled in and arguments in the extended format, so that a
// declaration and a registered config compare field by field. Unknown keys are kept (and so
// fail the comparison).
function normalize(service, c) {
  const types = {};
  for (const [name, t] of Object.entries(c.arg_types || {})) {
    types[name] = typeof t === 'string' ? { type: t } : { ...t };
  }
  const n = {
    service,
    version: null,
    nodes: null,
    choose_node_mode: 'random',
    timeout: 5000,
    arg_orders: Object.keys(types),
    response_type: 'sync',
    check_permission: false,
    permission_callback: null,
    retry: null,
    before_execute: null,
    after_execute: null,
    hook_timeout: 5000,
    request_info: false,
    disabled: false,
    visibility: 'public', // genapi's own (docs/protocol.md, "Function config")
    ...c,
    arg_types: types,
  };
  if (n.version === '0.0.0') n.version = null;
  if (n.check_permission === 'false') n.check_permission = false;
  return n;
}

function ctl(args) {
  return new Promise((resolve, reject) => execFile(path.join(BIN, 'genapi-ctl'), args,
    (err, stdout, stderr) => (err ? reject(new Error(`genapi-ctl ${args.join(' ')}: ${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout)))));
}

const byName = (a, b) => {
  const ka = `${a.request_type} ${a.version}`;
  const kb = `${b.request_type} ${b.version}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
};

// One test per service: its worker alone on a broker, its table read back and compared.
for (const [service, declared] of Object.entries(WALKTHROUGH)) {
  test(`${service} registers the walkthrough's FunConfigs exactly`, async () => {
    const broker = await startBroker();
    const procs = [broker];
    try {
      procs.push(await startWorker(service, broker));
      const reply = await ctl(['functions', service, '--broker', broker.endpoints.gateways]);
      assert.equal(reply.ok, true);
      const got = reply.functions.map((c) => normalize(service, c)).sort(byName);
      const want = declared.map((c) => normalize(service, c)).sort(byName);
      assert.deepEqual(got.map((c) => c.request_type), want.map((c) => c.request_type), `${service}: function names`);
      for (let i = 0; i < want.length; i++) {
        for (const field of new Set([...Object.keys(want[i]), ...Object.keys(got[i])])) {
          assert.deepEqual(got[i][field], want[i][field], `${service}.${want[i].request_type}: ${field}`);
        }
      }
      // Without a service, every service's configs.
      const all = await ctl(['functions', '--broker', broker.endpoints.gateways]);
      assert.deepEqual(all.functions, reply.functions);
    } finally {
      for (const p of procs.reverse()) await p.stop();
    }
  });
}

test("the walkthrough's section 5 call as written: generate_report with {format: 'pdf'}", async () => {
  const stack = await startStack({ workers: ['report_service'] });
  try {
    const { channel } = await join(connect(stack.url, {}, stack));
    const ack = await call(channel, { request_id: 'rep', service: 'report_service', request_type: 'generate_report', args: { format: 'pdf' } });
    assert.deepEqual([ack.kind, ack.success, ack.error], ['ack', true, null]);
    const pushes = await waitForPushes(channel, (p) => p.some((x) => x.request_id === 'rep' && x.kind !== 'ack'), 15000);
    const result = pushes.find((x) => x.request_id === 'rep' && x.kind !== 'ack');
    assert.deepEqual([result.kind, result.result], ['result', { report_url: 'https://example.com/reports/123.pdf' }]);
  } finally {
    await stack.stop();
  }
});

// A worker in any language may push fields the C library cannot set: those nothing acts on yet
// (and hooks that break a rule) are refused, reported in REGISTERED and listed in the failed
// configs, never ignored.
test('a config setting a field nothing acts on yet is refused and listed in the failed configs', async () => {
  const broker = await startBroker();
  try {
    const cfg = (request_type, extra) => ({ service: 'data_service', request_type, ...extra });
    const body = {
      node: 'data_service@test', service: 'data_service', config_version: '1',
      functions: [
        cfg('plain', {}),
        cfg('expensive_operation', { before_execute: 'data_service.validate_quota', after_execute: 'data_service.log_response', hook_timeout: 5000 }),
        cfg('get_data', { retry: 3 }),
        cfg('streamed', { response_type: 'stream', after_execute: 'data_service.log_response' }),
        cfg('resolved', { nodes: { resolver: 'resolve_nodes' } }),
      ],
    };
    const out = await new Promise((resolve, reject) => {
      const p = spawn(path.join(BIN, 'genapi-test-register'), [broker.endpoints.workers, JSON.stringify(body)]);
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d) => { stdout += d; });
      p.stderr.on('data', (d) => { stderr += d; });
      p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(stdout)) : reject(new Error(`exit ${code}: ${stderr}`))));
    });
    assert.equal(out.ok, true);
    const want = [
      { function: 'streamed', reason: 'after_execute: only for sync and async functions (this one is stream: its chunks reach the client as they come)' },
      { function: 'resolved', reason: 'nodes: a list of node names, or a resolver function named "service.request_type"' },
    ];
    assert.deepEqual(out.failed.map(({ function: f, reason }) => ({ function: f, reason })), want);
    const status = await ctl(['status', '--broker', broker.endpoints.gateways]);
    assert.deepEqual(status.failed_configs.map(({ service, function: f, reason }) => ({ service, function: f, reason })),
      want.map((w) => ({ service: 'data_service', ...w })));
    // The plain config, expensive_operation (hooks are acted on) and get_data (so is retry)
    // are registered.
    const fns = await ctl(['functions', 'data_service', '--broker', broker.endpoints.gateways]);
    assert.deepEqual(fns.functions.map((c) => c.request_type).sort(), ['expensive_operation', 'get_data', 'plain']);
  } finally {
    await broker.stop();
  }
});

// Section 9's data_service, as `make run` starts it: three workers, node1..node3, each answer
// naming the node that served it.
test("data_service.get_data: each answer names the node that served it", async () => {
  const broker = await startBroker();
  const procs = [broker];
  try {
    for (const node of ['node1', 'node2', 'node3']) {
      procs.push(await startWorker('data_service', broker, { args: ['--set', `node=${node}`] }));
    }
    const gateway = await startGateway(broker);
    procs.push(gateway);
    const socket = connect(gateway.url);
    try {
      const { channel } = await join(socket);
      const seen = new Set();
      for (let i = 0; i < 60 && seen.size < 3; i++) {
        const r = await call(channel, { request_id: `d${i}`, service: 'data_service', request_type: 'get_data' });
        assert.equal(r.success, true);
        assert.deepEqual(Object.keys(r.result).sort(), ['data', 'node']);
        seen.add(r.result.node);
      }
      assert.deepEqual([...seen].sort(), ['node1', 'node2', 'node3']);
      // As declared: no arguments.
      const extra = await call(channel, { request_id: 'dx', service: 'data_service', request_type: 'get_data', args: { id: '1' } });
      assert.equal(extra.success, false);
    } finally {
      socket.disconnect();
    }
  } finally {
    for (const p of procs.reverse()) await p.stop();
  }
});

// Section 11's calls as `make run` serves them: validate_quota and log_response around
// expensive_operation (with a quota of 2 calls per caller for the test), enrich_request with its
// extra args before process_data.
test('section 11: hooks_service around data_service.expensive_operation and process_data', async () => {
  const broker = await startBroker();
  const procs = [broker];
  try {
    procs.push(await startWorker('data_service', broker));
    process.env.GENAPI_HOOKS_QUOTA = '2';
    try {
      procs.push(await startWorker('hooks_service', broker));
    } finally {
      delete process.env.GENAPI_HOOKS_QUOTA;
    }
    const hooks = procs[procs.length - 1];
    const gateway = await startGateway(broker);
    procs.push(gateway);
    const socket = connect(gateway.url);
    try {
      const { channel } = await join(socket);
      const ask = (request_id, request_type, args) => call(channel, { request_id, service: 'data_service', request_type, args });
      // The hooks are internal: a client calling validate_quota directly gets what a function
      // that does not exist gets, and spends no quota (both calls below still pass).
      const direct = await call(channel, { request_id: 'q', service: 'hooks_service', request_type: 'validate_quota', args: { hook: 'before', request: {}, config: {}, extra: null, result: null } });
      const absent = await call(channel, { request_id: 'q', service: 'hooks_service', request_type: 'no_such_hook', args: {} });
      assert.deepEqual(direct, absent);
      assert.equal(direct.error, 'Unknown function');
      for (const id of ['e1', 'e2']) {
        const r = await ask(id, 'expensive_operation');
        assert.deepEqual([r.success, r.result.result], [true, 'expensive result']);
      }
      const r = await ask('e3', 'expensive_operation');
      assert.deepEqual([r.success, r.error], [false, 'Quota exceeded. Upgrade your plan.']);
      // log_response logs each call that ran (on stderr); the refused one never ran.
      const logged = () => (hooks.stderr.match(/API call: data_service\/expensive_operation by anonymous/g) || []).length;
      await eventually(() => logged() === 2);
      assert.equal(logged(), 2);
      const p = await ask('p1', 'process_data', { data: { n: 1 } });
      assert.deepEqual(p.result, { processed: { n: 1 }, enriched: true });
    } finally {
      socket.disconnect();
    }
  } finally {
    for (const p of procs.reverse()) await p.stop();
  }
});
