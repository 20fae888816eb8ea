#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// Checks that every code block of a doc opened as ```c file=PATH region=NAME is, line for line,
// the region of PATH between the line `// [NAME]` and the next `// [` marker line (the marker
// itself included). So docs/testing.md shows compiled, tested code and cannot rot.
// Usage: check-doc-snippets.js DOC ROOT. Exit 0 when all match, 1 otherwise (with a diff hint).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const [doc, root] = process.argv.slice(2);
const text = fs.readFileSync(doc, 'utf8');
const re = /^```c file=(\S+) region=(.+)\n([\s\S]*?)^```$/gm;
let m;
let blocks = 0;
let bad = 0;
while ((m = re.exec(text)) !== null) {
  blocks++;
  const [, file, region, body] = m;
  const lines = fs.readFileSync(path.join(root, file), 'utf8').split('\n');
  const start = lines.indexOf(`// [${region}]`);
  if (start < 0) {
    console.error(`${doc}: region [${region}] not found in ${file}`);
    bad++;
    continue;
  }
  let end = start + 1;
  while (end < lines.length && !lines[end].startsWith('// [')) end++;
  const want = lines.slice(start, end).join('\n').replace(/\n+$/, '') + '\n';
  if (body !== want) {
    console.error(`${doc}: block [${region}] differs from ${file} lines ${start + 1}-${end}`);
    bad++;
  }
}
if (blocks === 0) {
  console.error(`${doc}: no \`\`\`c file=... region=... blocks`);
  bad++;
}
process.exit(bad ? 1 : 0);
