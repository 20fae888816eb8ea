// SPDX-License-Identifier: MIT
// Builds JWTs in the tests (node:crypto only), including the bad ones a gateway must refuse:
// expired, unsigned, signed with another algorithm or key, without exp, not yet valid.
'use strict';

const crypto = require('node:crypto');

const b64 = (obj) => Buffer.from(typeof obj === 'string' ? obj : JSON.stringify(obj)).toString('base64url');

function sign(claims, secret, { alg = 'HS256' } = {}) {
  const head = b64({ alg, typ: 'JWT' });
  const body = b64(claims);
  if (alg === 'none') return `${head}.${body}.`;
  const hash = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' }[alg];
  const sig = crypto.createHmac(hash, secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

const now = () => Math.floor(Date.now() / 1000);

module.exports = { sign, now };
