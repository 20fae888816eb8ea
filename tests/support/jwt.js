// SPDX-License-Identifier: MIT
// Builds JWTs in the tests (node:crypto only), including the bad ones a gateway must refuse:
// expired, unsigned, signed with another algorithm or key, without exp, not yet valid; HS*,
// RS256 and ES256.
'use strict';

const crypto = require('node:crypto');

const b64 = (obj) => Buffer.from(typeof obj === 'string' ? obj : JSON.stringify(obj)).toString('base64url');

// `key` is the HMAC secret for HS*, a private KeyObject (or PEM) for RS256 and ES256.
function sign(claims, key, { alg = 'HS256' } = {}) {
  const head = b64({ alg, typ: 'JWT' });
  const body = b64(claims);
  const input = `${head}.${body}`;
  if (alg === 'none') return `${input}.`;
  let sig;
  if (alg === 'RS256') {
    sig = crypto.sign('sha256', Buffer.from(input), key).toString('base64url');
  } else if (alg === 'ES256') {
    // JWS wants the raw r || s pair, not DER.
    sig = crypto.sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
  } else {
    const hash = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' }[alg];
    sig = crypto.createHmac(hash, key).update(input).digest('base64url');
  }
  return `${input}.${sig}`;
}

// A fresh key pair: {privateKey (KeyObject), publicPem (string)} for 'rsa' or 'ec' (P-256).
function keyPair(type) {
  const opts = type === 'rsa' ? { modulusLength: 2048 } : { namedCurve: 'P-256' };
  const { privateKey, publicKey } = crypto.generateKeyPairSync(type, opts);
  return { privateKey, publicPem: publicKey.export({ type: 'spki', format: 'pem' }) };
}

const now = () => Math.floor(Date.now() / 1000);

module.exports = { sign, now, keyPair };
