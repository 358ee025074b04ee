#!/usr/bin/env node
'use strict';
// The OpenID Foundation's oidcc-basic-certification-test-plan, module by module, as far as it
// applies to HelloJohn (code flow, no request objects, no address/phone claims), driven by the
// certified relying-party library openid-client (v5) against a running `hj serve`. It starts
// nothing: scripts/conformance.sh starts the server(s), creates the clients and sets:
//
//   HJ_ISSUER                  the issuer (HELLOJOHN_BASE_URL): discovery, authorize, sign-in
//   HJ_BACKEND                 optional: another instance with the same issuer and store; the
//                              token, userinfo, JWKS, revocation, introspection and logout
//                              requests go there instead (the Issuer is built from the
//                              issuer's discovery document with those endpoints moved)
//   HJ_TENANT                  tenant slug (default local)
//   HJ_REDIRECT_URI            registered for the three clients
//   HJ_POST_LOGOUT_REDIRECT_URI registered for the public client
//   HJ_PUBLIC_CLIENT_ID        public client (token_endpoint_auth_method none, PKCE)
//   HJ_BASIC_CLIENT_ID/SECRET  confidential client used with client_secret_basic (also has
//                              the client_credentials grant and HJ_CLIENT_CREDENTIALS_SCOPE)
//   HJ_POST_CLIENT_ID/SECRET   confidential client used with client_secret_post
//
//   node oidcc-basic.js [--list] [-v] [MODULE-SUBSTRING...]
//
// Prints `PASS name` or `FAIL name: reason` per module; exits 1 when any module failed.

const crypto = require('node:crypto');
const { Issuer, custom, generators, errors } = require('openid-client');
const jose = require('jose');
const { assert, Browser, authorize, env, getJson, register, sleep, trimSlash } = require('./lib');

const { OPError } = errors;

const LIST = process.argv.includes('--list'); // only lists the modules: needs no server
const C = LIST ? {} : {
  issuer: trimSlash(env('HJ_ISSUER')),
  backend: process.env.HJ_BACKEND ? trimSlash(process.env.HJ_BACKEND) : null,
  tenant: env('HJ_TENANT', 'local'),
  redirectUri: env('HJ_REDIRECT_URI'),
  postLogoutRedirectUri: env('HJ_POST_LOGOUT_REDIRECT_URI'),
  publicId: env('HJ_PUBLIC_CLIENT_ID'),
  basicId: env('HJ_BASIC_CLIENT_ID'),
  basicSecret: env('HJ_BASIC_CLIENT_SECRET'),
  postId: env('HJ_POST_CLIENT_ID'),
  postSecret: env('HJ_POST_CLIENT_SECRET'),
  ccScope: env('HJ_CLIENT_CREDENTIALS_SCOPE', ''),
};
/** Where the back-channel requests go. */
const BACK = C.backend || C.issuer;

custom.setHttpOptionsDefaults({ timeout: 15000 });

// Modules that fail because of a known server bug stay in the suite (and keep failing it);
// the note says what is wrong, so a FAIL line is self-explaining. Empty: none known.
const KNOWN_SERVER_BUGS = {};

// ------------------------------------------------------------------------------ helpers

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const nowSecs = () => Math.floor(Date.now() / 1000);

/** The issuer's metadata with the back-channel endpoints on HJ_BACKEND (two-instance mode). */
function split(metadata) {
  if (!C.backend) return metadata;
  const move = (u) => (u && u.startsWith(`${C.issuer}/`) ? C.backend + u.slice(C.issuer.length) : u);
  const m = { ...metadata };
  for (const k of [
    'token_endpoint',
    'userinfo_endpoint',
    'jwks_uri',
    'revocation_endpoint',
    'introspection_endpoint',
    'end_session_endpoint',
  ]) {
    m[k] = move(m[k]);
  }
  return m;
}

/** Expects `promise` to fail with the OAuth error `code`; returns the OPError. */
async function rejects(promise, code, what) {
  let result;
  try {
    result = await promise;
  } catch (e) {
    if (e instanceof OPError && e.error === code) return e;
    const got = e instanceof OPError ? `${e.error} (${e.error_description})` : e.message;
    throw new Error(`${what}: expected error ${code}, got ${got}`);
  }
  throw new Error(`${what}: expected error ${code}, but it succeeded (${JSON.stringify(result).slice(0, 200)})`);
}

/** Records the headers and form of every request a client makes (openid-client's hook). */
function recordRequests(client) {
  const seen = [];
  client[custom.http_options] = (url, options) => {
    seen.push({ url: url.href, headers: { ...(options.headers || {}) }, form: options.form && { ...options.form } });
    return {};
  };
  return seen;
}

const ctx = {}; // issuer, clients, users, JWKS; filled by setup()

function newClient(id, secret, method) {
  const client = new ctx.issuer.Client({
    client_id: id,
    client_secret: secret,
    token_endpoint_auth_method: method,
    redirect_uris: [C.redirectUri],
    post_logout_redirect_uris: [C.postLogoutRedirectUri],
    response_types: ['code'],
    id_token_signed_response_alg: 'RS256',
  });
  client[custom.clock_tolerance] = 5;
  return client;
}

/**
 * One authorization-code flow: authorization URL by openid-client, the browser through the
 * server (signing in as `user` when the page shows), then `client.callback` (state, iss,
 * nonce, PKCE, ID token validation by openid-client). Options: client, browser, user (null:
 * do not sign in), scope, nonce (false: none), pkce (false: none), params (extra authorization
 * parameters), method (POST: the authorization request as a form), maxAge.
 */
async function codeFlow(o = {}) {
  const client = o.client || ctx.public;
  const browser = o.browser || new Browser();
  const state = generators.state();
  const nonce = o.nonce === false ? undefined : generators.nonce();
  const verifier = o.pkce === false ? undefined : generators.codeVerifier();
  const url = client.authorizationUrl({
    scope: o.scope || 'openid email profile',
    redirect_uri: C.redirectUri,
    state,
    nonce,
    code_challenge: verifier && generators.codeChallenge(verifier),
    code_challenge_method: verifier && 'S256',
    ...(o.params || {}),
  });
  const user = o.user === null ? null : o.user || ctx.user;
  const walk = await authorize(browser, url, { redirectUri: C.redirectUri, user, method: o.method });
  const out = { client, browser, state, nonce, verifier, url, walk };
  if (!walk.callback) {
    const s = walk.stopped;
    throw new Error(`the browser did not reach the redirect URI: ${s.status} at ${s.url}: ${s.text.slice(0, 200)}`);
  }
  out.params = client.callbackParams(walk.callback);
  if (o.exchange === false) return out;
  const maxAge = o.params && o.params.max_age !== undefined ? Number(o.params.max_age) : undefined;
  out.tokens = await client.callback(C.redirectUri, out.params, {
    response_type: 'code',
    state,
    nonce,
    code_verifier: verifier,
    max_age: maxAge,
  });
  out.claims = out.tokens.claims();
  return out;
}

/** The error a flow's authorization response carried (the browser never signs in). */
async function authorizationError(o, code) {
  const f = await codeFlow({ ...o, user: null, exchange: false });
  const p = f.params;
  assert.equal(p.error, code, `error in the authorization response (${JSON.stringify(p)})`);
  assert.equal(p.state, f.state, 'the error response carries state');
  assert.equal(p.iss, C.issuer, 'the error response carries iss (RFC 9207)');
  // openid-client checks state and iss, then raises the error.
  await rejects(f.client.callback(C.redirectUri, p, { state: f.state, nonce: f.nonce, code_verifier: f.verifier }), code, 'callback');
  return f;
}

/** A browser signed in as the main user (one sign-in for the run) and its first flow. */
async function session() {
  if (!ctx.session) {
    ctx.session = (async () => {
      const browser = new Browser();
      const first = await codeFlow({ browser });
      assert.equal(first.walk.pages.length, 1, 'the first authorization showed the sign-in page');
      return { browser, first };
    })();
  }
  return ctx.session;
}

/** The independent ID token check: signature with `jose` and the JWKS only, then each claim. */
async function checkIdToken(idToken, { clientId, nonce, accessToken, authTimeAtLeast }) {
  const header = jose.decodeProtectedHeader(idToken);
  assert.equal(header.alg, 'RS256', 'ID token alg (the default id_token_signed_response_alg)');
  assert.ok(header.kid, 'ID token header has kid');
  assert.ok(
    ctx.jwks.keys.some((k) => k.kid === header.kid),
    `ID token kid ${header.kid} is in the issuer's JWKS`,
  );
  const { payload: c } = await jose.jwtVerify(idToken, ctx.keySet, {
    issuer: C.issuer,
    audience: clientId,
    algorithms: ['RS256'],
    clockTolerance: 5,
  });
  const now = nowSecs();
  assert.equal(c.iss, C.issuer, 'iss');
  assert.ok(typeof c.sub === 'string' && c.sub.length > 0 && c.sub.length <= 255, 'sub: 1-255 characters');
  const aud = Array.isArray(c.aud) ? c.aud : [c.aud];
  assert.ok(aud.includes(clientId), `aud contains ${clientId}`);
  if (aud.length > 1 || c.azp !== undefined) assert.equal(c.azp, clientId, 'azp is the client');
  for (const k of ['exp', 'iat', 'auth_time']) {
    assert.ok(Number.isInteger(c[k]), `${k} is an integer (got ${c[k]})`);
  }
  assert.ok(c.exp > now, 'exp is in the future');
  assert.ok(c.exp > c.iat, 'exp is after iat');
  assert.ok(Math.abs(c.iat - now) <= 60, `iat is now (iat ${c.iat}, now ${now})`);
  assert.ok(c.auth_time <= c.iat, 'auth_time is not after iat');
  assert.ok(now - c.auth_time < 3600, 'auth_time is recent');
  if (authTimeAtLeast !== undefined) {
    assert.ok(c.auth_time >= authTimeAtLeast, `auth_time ${c.auth_time} >= ${authTimeAtLeast}`);
  }
  if (nonce === undefined) assert.equal(c.nonce, undefined, 'no nonce when none was sent');
  else assert.equal(c.nonce, nonce, 'nonce is the one sent');
  if (accessToken !== undefined) {
    const digest = crypto.createHash('sha256').update(accessToken, 'ascii').digest();
    assert.equal(c.at_hash, b64url(digest.subarray(0, 16)), 'at_hash is the left half of SHA-256(access_token)');
  }
  return c;
}

/** An access token's signature with `jose` and the JWKS only (EdDSA JWTs). */
async function checkAccessToken(token, { sub } = {}) {
  const header = jose.decodeProtectedHeader(token);
  assert.equal(header.alg, 'EdDSA', 'access token alg');
  const { payload } = await jose.jwtVerify(token, ctx.keySet, { issuer: C.issuer, algorithms: ['EdDSA'], clockTolerance: 5 });
  if (sub !== undefined) assert.equal(payload.sub, sub, 'access token sub');
  return payload;
}

const flows = {
  tokenSetShape(t) {
    assert.ok(t.access_token, 'access_token');
    assert.equal(String(t.token_type).toLowerCase(), 'bearer', 'token_type Bearer');
    assert.ok(t.id_token, 'id_token (scope openid)');
    assert.ok(Number.isInteger(t.expires_in) && t.expires_in > 0, 'expires_in');
  },
};

// ------------------------------------------------------------------------------ modules

const MODULES = [];
const module_ = (name, what, fn) => MODULES.push({ name, what, fn });

module_('oidcc-discovery-endpoint-verification', 'discovery document: required members, values this server supports, openid-client discovery, the tenant document; both instances serve the same one', async () => {
  const r = await getJson(`${C.issuer}/.well-known/openid-configuration`);
  assert.equal(r.status, 200, 'status');
  assert.match(r.headers.get('content-type') || '', /^application\/json/, 'content-type');
  const m = r.json;
  assert.equal(m.issuer, C.issuer, 'issuer is HELLOJOHN_BASE_URL exactly');
  for (const k of ['authorization_endpoint', 'token_endpoint', 'userinfo_endpoint', 'jwks_uri', 'response_types_supported', 'subject_types_supported', 'id_token_signing_alg_values_supported']) {
    assert.ok(m[k], `${k} is present`);
  }
  for (const k of Object.keys(m).filter((k) => k.endsWith('_endpoint') || k === 'jwks_uri')) {
    assert.ok(m[k].startsWith(`${C.issuer}/`), `${k} is under the issuer (${m[k]})`);
  }
  const has = (k, v) => assert.ok((m[k] || []).includes(v), `${k} includes ${v}`);
  has('response_types_supported', 'code');
  has('scopes_supported', 'openid');
  has('id_token_signing_alg_values_supported', 'RS256');
  has('code_challenge_methods_supported', 'S256');
  has('grant_types_supported', 'authorization_code');
  has('grant_types_supported', 'refresh_token');
  for (const a of ['none', 'client_secret_basic', 'client_secret_post']) has('token_endpoint_auth_methods_supported', a);
  assert.ok(m.subject_types_supported.every((s) => ['public', 'pairwise'].includes(s)), 'subject_types_supported');
  assert.equal(m.authorization_response_iss_parameter_supported, true, 'authorization_response_iss_parameter_supported');
  assert.equal(m.request_parameter_supported, false, 'request_parameter_supported (request objects are refused)');
  const discovered = await Issuer.discover(C.issuer);
  assert.equal(discovered.issuer, C.issuer, 'openid-client discovery');
  const t = await getJson(`${C.issuer}/t/${C.tenant}/.well-known/openid-configuration`);
  assert.equal(t.status, 200, 'tenant document status');
  assert.equal(t.json.issuer, C.issuer, 'tenant document issuer');
  assert.equal(t.json.token_endpoint, m.token_endpoint, 'tenant document token_endpoint');
  assert.ok(t.json.jwks_uri.startsWith(`${C.issuer}/`), 'tenant jwks_uri');
  const unknown = await getJson(`${C.issuer}/t/no-such-tenant-${Date.now()}/.well-known/openid-configuration`);
  assert.equal(unknown.status, 404, 'unknown tenant: 404');
  if (C.backend) {
    const b = await getJson(`${C.backend}/.well-known/openid-configuration`);
    assert.deepEqual(b.json, m, 'instance B serves the same discovery document');
  }
});

module_('oidcc-server-jwks', 'JWKS: public keys only, unique kids, an RSA key for RS256 and an Ed25519 key, importable; the tenant JWKS and instance B serve the same keys', async () => {
  const r = await getJson(ctx.metadata.jwks_uri);
  assert.equal(r.status, 200, 'status');
  const { keys } = r.json;
  assert.ok(Array.isArray(keys) && keys.length > 0, 'keys');
  const kids = keys.map((k) => k.kid);
  assert.equal(new Set(kids).size, kids.length, 'kids are unique');
  for (const k of keys) {
    assert.ok(k.kty && k.kid, 'kty and kid');
    if (k.use !== undefined) assert.equal(k.use, 'sig', `use of ${k.kid}`);
    for (const p of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) assert.equal(k[p], undefined, `no private member ${p} in ${k.kid}`);
    const alg = k.alg || (k.kty === 'RSA' ? 'RS256' : 'EdDSA');
    await jose.importJWK(k, alg);
  }
  assert.ok(keys.some((k) => k.kty === 'RSA' && (!k.alg || k.alg === 'RS256')), 'an RSA key for RS256');
  assert.ok(keys.some((k) => k.kty === 'OKP' && k.crv === 'Ed25519'), 'an Ed25519 key for EdDSA');
  const t = await getJson(`${C.issuer}/.well-known/jwks/${C.tenant}.json`);
  assert.deepEqual(t.json, r.json, 'the tenant JWKS is the same');
  if (C.backend) {
    const a = await getJson(`${C.issuer}/.well-known/jwks.json`);
    assert.deepEqual(a.json.keys.map((k) => k.kid).sort(), kids.slice().sort(), 'instances A and B publish the same keys');
  }
});

module_('oidcc-server', 'code flow with nonce and PKCE through the sign-in page: code, state and iss back; tokens; openid-client validates the ID token', async () => {
  const { first: f } = await session();
  assert.equal(f.params.iss, C.issuer, 'iss in the authorization response');
  assert.ok(f.params.code, 'code');
  flows.tokenSetShape(f.tokens);
  assert.ok(f.tokens.refresh_token, 'refresh_token (the client has the grant)');
  assert.ok(f.tokens.scope.split(' ').includes('openid'), 'scope');
  assert.equal(f.claims.nonce, f.nonce, 'nonce');
  assert.equal(f.walk.pages[0].heading.length > 0, true, 'sign-in page heading');
  // The token response itself (openid-client does not show its headers): JSON, never cached.
  const { browser } = await session();
  const g = await codeFlow({ browser, exchange: false });
  const r = await getJson(ctx.issuer.metadata.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: g.params.code,
      redirect_uri: C.redirectUri,
      client_id: C.publicId,
      code_verifier: g.verifier,
    }).toString(),
  });
  assert.equal(r.status, 200, `token response status (${r.text.slice(0, 200)})`);
  assert.match(r.headers.get('content-type') || '', /^application\/json/, 'token response content-type');
  assert.match(r.headers.get('cache-control') || '', /no-store/, 'token response Cache-Control: no-store (RFC 6749 5.1)');
  assert.equal(String(r.json.token_type).toLowerCase(), 'bearer', 'token_type');
});

module_('oidcc-ensure-request-without-nonce-succeeds-for-code-flow', 'no nonce: the code flow still succeeds and the ID token carries none', async () => {
  const { browser } = await session();
  const f = await codeFlow({ browser, nonce: false });
  assert.equal(f.walk.pages.length, 0, 'no sign-in page (session)');
  assert.equal(f.claims.nonce, undefined, 'no nonce claim');
});

module_('oidcc-ensure-request-with-valid-pkce-succeeds', 'PKCE S256 with the public client and with a confidential client', async () => {
  const { browser } = await session();
  const a = await codeFlow({ browser });
  flows.tokenSetShape(a.tokens);
  const b = await codeFlow({ browser, client: ctx.basic });
  flows.tokenSetShape(b.tokens);
  assert.equal(b.claims.aud, C.basicId, 'aud of the confidential client');
});

module_('pkce-required-and-verified', 'public client without code_challenge -> invalid_request at the redirect URI; method plain refused; wrong or missing code_verifier -> invalid_grant', async () => {
  await authorizationError({ pkce: false }, 'invalid_request');
  await authorizationError({ params: { code_challenge_method: 'plain' } }, 'invalid_request');
  const { browser } = await session();
  const f = await codeFlow({ browser, exchange: false });
  await rejects(
    f.client.callback(C.redirectUri, f.params, { state: f.state, nonce: f.nonce, code_verifier: generators.codeVerifier() }),
    'invalid_grant',
    'wrong code_verifier',
  );
  const g = await codeFlow({ browser, exchange: false });
  await rejects(g.client.callback(C.redirectUri, g.params, { state: g.state, nonce: g.nonce }), 'invalid_grant', 'no code_verifier');
});

module_('oidcc-id-token-signature', 'ID token: RS256, kid in the JWKS, verified by jose from the JWKS alone; a tampered token fails; the access token (EdDSA JWT) too', async () => {
  const { browser } = await session();
  const f = await codeFlow({ browser });
  const id = f.tokens.id_token;
  await checkIdToken(id, { clientId: C.publicId, nonce: f.nonce, accessToken: f.tokens.access_token });
  const [h, p, s] = id.split('.');
  const claims = JSON.parse(Buffer.from(p, 'base64url'));
  claims.sub = 'someone-else';
  const forged = `${h}.${b64url(JSON.stringify(claims))}.${s}`;
  await assert.rejects(jose.jwtVerify(forged, ctx.keySet, { algorithms: ['RS256'] }), /signature verification failed/, 'a changed payload does not verify');
  await checkAccessToken(f.tokens.access_token, { sub: f.claims.sub });
});

module_('oidcc-id-token-claims', 'ID token claims checked one by one: iss, sub, aud, azp, exp, iat, auth_time, nonce, at_hash; openid-client reads the same', async () => {
  const { browser, first } = await session();
  const f = await codeFlow({ browser });
  const c = await checkIdToken(f.tokens.id_token, {
    clientId: C.publicId,
    nonce: f.nonce,
    accessToken: f.tokens.access_token,
    authTimeAtLeast: first.claims.auth_time,
  });
  assert.deepEqual(f.claims, c, 'openid-client and jose read the same claims');
  assert.equal(c.auth_time, first.claims.auth_time, 'auth_time is the session sign-in');
  assert.equal(c.sub, first.claims.sub, 'sub is stable');
});

async function userinfo(method, via) {
  const { first } = await session();
  // openid-client checks that userinfo's sub is the ID token's when given the token set.
  const ui = await first.client.userinfo(first.tokens, { method, via });
  assert.equal(ui.sub, first.claims.sub, 'sub');
  assert.equal(ui.email, ctx.user.email, 'email');
  return ui;
}

module_('oidcc-userinfo-get', 'userinfo GET with Authorization: Bearer', () => userinfo('GET', 'header'));

module_('oidcc-userinfo-post-header', 'userinfo POST with Authorization: Bearer', () => userinfo('POST', 'header'));

module_('oidcc-userinfo-post-body', 'userinfo POST with access_token in the form body (RFC 6750 2.2)', () => userinfo('POST', 'body'));

module_('userinfo-bearer-error-response', 'userinfo without a token, or with an invalid one: 401 with a WWW-Authenticate: Bearer header (RFC 6750 section 3, OpenID Connect Core 5.3.3), error="invalid_token" for the invalid one', async () => {
  const ep = ctx.issuer.metadata.userinfo_endpoint;
  const problems = [];
  for (const [what, init] of [
    ['GET without a token', {}],
    ['GET with Authorization: Bearer not-a-token', { headers: { authorization: 'Bearer not-a-token' } }],
    ['POST with access_token=not-a-token in the body', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'access_token=not-a-token' }],
  ]) {
    const r = await getJson(ep, init);
    const challenge = r.headers.get('www-authenticate');
    const invalid = what !== 'GET without a token';
    if (r.status !== 401) problems.push(`${what}: status ${r.status}, expected 401`);
    else if (!challenge || !/^Bearer\b/.test(challenge)) problems.push(`${what}: 401 without a WWW-Authenticate: Bearer header (body ${r.text.slice(0, 120)})`);
    else if (invalid && !/error="invalid_token"/.test(challenge)) problems.push(`${what}: WWW-Authenticate ${challenge} lacks error="invalid_token"`);
  }
  assert.equal(problems.length, 0, problems.join('; '));
});

async function scopeFlow(scope) {
  const { browser } = await session();
  const f = await codeFlow({ browser, scope });
  const ui = await f.client.userinfo(f.tokens);
  return { f, ui, id: f.claims };
}

module_('oidcc-scope-profile', 'scope openid profile: name in the ID token and userinfo, no email', async () => {
  const { ui, id } = await scopeFlow('openid profile');
  for (const [where, c] of [['ID token', id], ['userinfo', ui]]) {
    assert.equal(c.name, ctx.user.name, `${where}: name`);
    assert.equal(c.email, undefined, `${where}: no email`);
    assert.equal(c.email_verified, undefined, `${where}: no email_verified`);
  }
});

module_('oidcc-scope-email', 'scope openid email: email and email_verified, no name', async () => {
  const { ui, id } = await scopeFlow('openid email');
  for (const [where, c] of [['ID token', id], ['userinfo', ui]]) {
    assert.equal(c.email, ctx.user.email, `${where}: email`);
    assert.equal(typeof c.email_verified, 'boolean', `${where}: email_verified`);
    assert.equal(c.name, undefined, `${where}: no name`);
  }
});

module_('oidcc-scope-all', 'scope openid email address phone profile: the supported ones granted, address and phone left out', async () => {
  const { f, ui, id } = await scopeFlow('openid email address phone profile');
  assert.deepEqual(f.tokens.scope.split(' ').sort(), ['email', 'openid', 'profile'], 'granted scope');
  for (const [where, c] of [['ID token', id], ['userinfo', ui]]) {
    assert.equal(c.email, ctx.user.email, `${where}: email`);
    assert.equal(c.name, ctx.user.name, `${where}: name`);
  }
});

module_('oidcc-ensure-other-scope-order-succeeds', 'scope "email openid" (openid not first)', async () => {
  const { id } = await scopeFlow('email openid');
  assert.equal(id.email, ctx.user.email, 'email');
});

module_('oidcc-prompt-none-not-logged-in', 'prompt=none without a session: login_required at the redirect URI with state and iss, no page shown', async () => {
  const f = await authorizationError({ params: { prompt: 'none' } }, 'login_required');
  assert.equal(f.walk.pages.length, 0, 'no sign-in page');
});

module_('oidcc-prompt-none-logged-in', 'prompt=none with a session: a code at once, same sub and auth_time', async () => {
  const { browser, first } = await session();
  const f = await codeFlow({ browser, params: { prompt: 'none' } });
  assert.equal(f.walk.pages.length, 0, 'no sign-in page');
  assert.equal(f.claims.sub, first.claims.sub, 'sub');
  assert.equal(f.claims.auth_time, first.claims.auth_time, 'auth_time');
});

module_('oidcc-prompt-login', 'prompt=login with a live session: the sign-in page again; a later auth_time', async () => {
  const browser = new Browser();
  const a = await codeFlow({ browser });
  assert.equal(a.walk.pages.length, 1, 'first: sign-in page');
  await sleep(1100);
  const b = await codeFlow({ browser, params: { prompt: 'login' } });
  assert.equal(b.walk.pages.length, 1, 'prompt=login shows the sign-in page again');
  assert.equal(b.claims.sub, a.claims.sub, 'same sub');
  assert.ok(b.claims.auth_time > a.claims.auth_time, `auth_time later (${a.claims.auth_time} -> ${b.claims.auth_time})`);
  const c = await codeFlow({ browser });
  assert.equal(c.walk.pages.length, 0, 'then no page without prompt');
});

module_('oidcc-max-age-1', 'max_age=1, 2 s after signing in (as the OpenID suite waits): sign-in page again, auth_time present and later', async () => {
  const browser = new Browser();
  const a = await codeFlow({ browser });
  await sleep(2100);
  const b = await codeFlow({ browser, params: { max_age: '1' } });
  assert.equal(b.walk.pages.length, 1, 'max_age=1 shows the sign-in page again');
  assert.ok(Number.isInteger(b.claims.auth_time), 'auth_time present');
  assert.ok(b.claims.auth_time > a.claims.auth_time, `auth_time later (${a.claims.auth_time} -> ${b.claims.auth_time})`);
  assert.ok(nowSecs() - b.claims.auth_time <= 5, 'auth_time is recent');
});

module_('oidcc-max-age-10000', 'max_age=10000 with a session: no page, same auth_time and sub', async () => {
  const { browser, first } = await session();
  const f = await codeFlow({ browser, params: { max_age: '10000' } });
  assert.equal(f.walk.pages.length, 0, 'no sign-in page');
  assert.equal(f.claims.auth_time, first.claims.auth_time, 'auth_time');
  assert.equal(f.claims.sub, first.claims.sub, 'sub');
});

// Parameters the server does not act on must not break the request (OpenID Connect Core 3.1.2.1).
for (const [name, params] of [
  ['oidcc-ensure-request-with-unknown-parameter-succeeds', { extra_parameter: 'conformance', another: 'x y' }],
  ['oidcc-display-page', { display: 'page' }],
  ['oidcc-display-popup', { display: 'popup' }],
  ['oidcc-ui-locales', { ui_locales: 'se' }],
  ['oidcc-claims-locales', { claims_locales: 'se' }],
  ['oidcc-ensure-request-with-acr-values-succeeds', { acr_values: '1 2' }],
  ['oidcc-claims-essential', { claims: JSON.stringify({ userinfo: { name: { essential: true } } }) }],
]) {
  module_(name, `${Object.keys(params).join(', ')} accepted (and ignored): a code and tokens`, async () => {
    const { browser } = await session();
    const f = await codeFlow({ browser, params });
    flows.tokenSetShape(f.tokens);
  });
}

module_('oidcc-ensure-post-request-succeeds', 'the authorization request as a POST form', async () => {
  const { browser } = await session();
  const f = await codeFlow({ browser, method: 'POST' });
  flows.tokenSetShape(f.tokens);
});

module_('oidcc-response-type-missing', 'no response_type: invalid_request at the redirect URI', async () => {
  await authorizationError({ params: { response_type: null } }, 'invalid_request');
});

module_('oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported', 'request (unsigned request object) and request_uri rejected as unsupported at the redirect URI', async () => {
  const object = `${b64url(JSON.stringify({ alg: 'none' }))}.${b64url(JSON.stringify({ client_id: C.publicId, response_type: 'code' }))}.`;
  await authorizationError({ params: { request: object } }, 'request_not_supported');
  await authorizationError({ params: { request_uri: 'https://rp.example/request.jwt' } }, 'request_uri_not_supported');
});

module_('oidcc-codereuse', 'a code redeemed twice: the second exchange gets invalid_grant, and the refresh token of the first stops working', async () => {
  const { browser } = await session();
  const f = await codeFlow({ browser });
  const checks = { state: f.state, nonce: f.nonce, code_verifier: f.verifier };
  await rejects(f.client.callback(C.redirectUri, f.params, checks), 'invalid_grant', 'second exchange');
  await rejects(f.client.refresh(f.tokens.refresh_token), 'invalid_grant', 'refresh token of the first exchange');
});

/** Authorization URL of the public client with `redirect_uri` as given (absent when null). */
function rawAuthorizeUrl(redirectUri, clientId = C.publicId) {
  const verifier = generators.codeVerifier();
  const q = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    scope: 'openid',
    state: generators.state(),
    code_challenge: generators.codeChallenge(verifier),
    code_challenge_method: 'S256',
  });
  if (redirectUri !== null) q.set('redirect_uri', redirectUri);
  return `${ctx.metadata.authorization_endpoint}?${q}`;
}

async function errorPage(url, what) {
  const { browser } = await session(); // signed in, so nothing but the URI check stands in the way
  const r = await browser.request(url);
  assert.equal(r.status, 400, `${what}: status`);
  assert.equal(r.location, null, `${what}: no redirect (Location ${r.location})`);
  assert.match(r.headers.get('content-type') || '', /^text\/html/, `${what}: an HTML error page`);
  assert.match(r.text, /invalid_request/, `${what}: says invalid_request`);
}

module_('oidcc-ensure-registered-redirect-uri', 'an unregistered redirect_uri (another path, an added query, another port) or an unknown client: 400 error page, never a redirect', async () => {
  const u = new URL(C.redirectUri);
  await errorPage(rawAuthorizeUrl(`${u.origin}/not-registered`), 'another path');
  await errorPage(rawAuthorizeUrl(`${C.redirectUri}?x=1`), 'an added query');
  await errorPage(rawAuthorizeUrl(`${u.protocol}//${u.hostname}:${Number(u.port) === 1 ? 2 : 1}${u.pathname}`), 'another port');
  await errorPage(rawAuthorizeUrl(C.redirectUri, `no-such-client-${Date.now()}`), 'an unknown client');
});

module_('oidcc-ensure-redirect-uri-in-authorization-request', 'no redirect_uri: 400 error page, no redirect', async () => {
  await errorPage(rawAuthorizeUrl(null), 'no redirect_uri');
});

async function confidential(client, method, id) {
  const seen = recordRequests(client);
  const { browser } = await session();
  const f = await codeFlow({ browser, client, pkce: false });
  flows.tokenSetShape(f.tokens);
  assert.equal(f.claims.aud, id, 'aud');
  const tokenCall = seen.find((s) => s.url === ctx.issuer.metadata.token_endpoint);
  assert.ok(tokenCall, 'the token request was made');
  if (method === 'client_secret_basic') {
    assert.match(String(tokenCall.headers.Authorization || tokenCall.headers.authorization), /^Basic /, 'Authorization: Basic');
    assert.equal(tokenCall.form.client_secret, undefined, 'no client_secret in the form');
  } else {
    assert.equal(tokenCall.headers.Authorization || tokenCall.headers.authorization, undefined, 'no Authorization header');
    assert.ok(tokenCall.form.client_secret, 'client_secret in the form');
  }
  // The same flow with a wrong secret: invalid_client (401).
  const wrong = newClient(id, `${id === C.basicId ? C.basicSecret : C.postSecret}x`, method);
  const g = await codeFlow({ browser, client: wrong, pkce: false, exchange: false });
  const e = await rejects(wrong.callback(C.redirectUri, g.params, { state: g.state, nonce: g.nonce }), 'invalid_client', 'wrong secret');
  assert.equal(e.response.statusCode, 401, 'invalid_client is a 401');
}

module_('oidcc-server-client-secret-basic', 'confidential client with client_secret_basic (no PKCE); a wrong secret -> invalid_client 401', () =>
  confidential(ctx.basic, 'client_secret_basic', C.basicId));

module_('oidcc-server-client-secret-post', 'confidential client with client_secret_post (no PKCE); a wrong secret -> invalid_client 401', () =>
  confidential(ctx.post, 'client_secret_post', C.postId));

module_('oidcc-refresh-token', 'refresh (public and confidential): new access and refresh tokens, the new access token works, the old refresh token is then rejected, another client cannot use it', async () => {
  const { browser } = await session();
  for (const client of [ctx.public, ctx.basic]) {
    const f = await codeFlow({ browser, client });
    const r = await client.refresh(f.tokens.refresh_token);
    assert.ok(r.access_token && r.access_token !== f.tokens.access_token, 'a new access token');
    assert.ok(r.refresh_token && r.refresh_token !== f.tokens.refresh_token, 'a new refresh token (rotation)');
    if (r.id_token) assert.equal(r.claims().sub, f.claims.sub, 'refreshed ID token sub');
    const ui = await client.userinfo(r.access_token);
    assert.equal(ui.sub, f.claims.sub, 'the new access token works at userinfo');
    await checkAccessToken(r.access_token, { sub: f.claims.sub });
    await rejects(client.refresh(f.tokens.refresh_token), 'invalid_grant', `${client.client_id}: the old refresh token`);
    const other = client === ctx.public ? ctx.post : ctx.public;
    const g = await codeFlow({ browser, client });
    await rejects(other.refresh(g.tokens.refresh_token), 'invalid_grant', `${client.client_id}'s refresh token presented by ${other.client_id}`);
  }
});

module_('oidcc-id-token-hint', 'id_token_hint of the signed-in user: a code (also with prompt=none); of another user with prompt=none: login_required; not ours: invalid_request', async () => {
  const { browser, first } = await session();
  const hint = first.tokens.id_token;
  const a = await codeFlow({ browser, params: { id_token_hint: hint, prompt: 'none' } });
  assert.equal(a.walk.pages.length, 0, 'prompt=none: no page');
  assert.equal(a.claims.sub, first.claims.sub, 'sub');
  const b = await codeFlow({ browser, params: { id_token_hint: hint } });
  assert.equal(b.walk.pages.length, 0, 'no prompt: no page');
  // Another user's ID token while the main user is signed in.
  const other = await codeFlow({ user: ctx.user2 });
  assert.notEqual(other.claims.sub, first.claims.sub, 'two users');
  await authorizationError({ browser, params: { id_token_hint: other.tokens.id_token, prompt: 'none' } }, 'login_required');
  const forged = `${hint.slice(0, hint.lastIndexOf('.'))}.${b64url(crypto.randomBytes(256))}`;
  await authorizationError({ browser, params: { id_token_hint: forged } }, 'invalid_request');
});

module_('oidcc-login-hint', 'login_hint: the sign-in page comes with the email filled in', async () => {
  const f = await codeFlow({ params: { login_hint: ctx.user.email } });
  assert.equal(f.walk.pages.length, 1, 'sign-in page');
  assert.equal(f.walk.pages[0].email, ctx.user.email, 'the email input is prefilled');
});

module_('client-credentials', 'client_credentials grant (RFC 6749 4.4) with client_secret_basic: an EdDSA access token for the client, no refresh or ID token; refused for a public client', async () => {
  const t = await ctx.basic.grant({ grant_type: 'client_credentials', ...(C.ccScope ? { scope: C.ccScope } : {}) });
  assert.ok(t.access_token, 'access_token');
  assert.equal(t.refresh_token, undefined, 'no refresh token');
  assert.equal(t.id_token, undefined, 'no ID token');
  await checkAccessToken(t.access_token, { sub: C.basicId });
  let refused = false;
  try {
    await ctx.public.grant({ grant_type: 'client_credentials' });
  } catch (e) {
    refused = e instanceof OPError && ['invalid_client', 'unauthorized_client'].includes(e.error);
    if (!refused) throw e;
  }
  assert.ok(refused, 'the public client is refused');
});

module_('token-revocation-and-introspection', 'RFC 7009 revocation of a refresh token (then refresh fails) and RFC 7662 introspection', async () => {
  const { browser } = await session();
  const f = await codeFlow({ browser, client: ctx.basic });
  const live = await ctx.basic.introspect(f.tokens.access_token, 'access_token');
  assert.equal(live.active, true, 'access token active');
  assert.equal(live.sub, f.claims.sub, 'introspected sub');
  const junk = await ctx.basic.introspect('not-a-token');
  assert.equal(junk.active, false, 'garbage is inactive');
  await ctx.basic.revoke(f.tokens.refresh_token, 'refresh_token');
  await rejects(ctx.basic.refresh(f.tokens.refresh_token), 'invalid_grant', 'revoked refresh token');
});

async function logout(tokens, postLogoutRedirectUri) {
  return getJson(`${BACK}/v2/auth/logout`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tokens.access_token}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      tenant_id: C.tenant,
      client_id: C.publicId,
      refresh_token: tokens.refresh_token,
      post_logout_redirect_uri: postLogoutRedirectUri,
    }),
  });
}

module_('rp-initiated-logout', 'POST /v2/auth/logout with the Bearer access token and the refresh token: a registered post_logout_redirect_uri -> 200 with it, an unregistered one -> 204; the refresh token is revoked either way', async () => {
  const { browser } = await session();
  const a = await codeFlow({ browser });
  const r = await logout(a.tokens, C.postLogoutRedirectUri);
  assert.equal(r.status, 200, `registered URI: status (${r.text.slice(0, 200)})`);
  assert.equal(r.json.post_logout_redirect_uri, C.postLogoutRedirectUri, 'the URI is returned');
  await rejects(ctx.public.refresh(a.tokens.refresh_token), 'invalid_grant', 'refresh after logout');
  const b = await codeFlow({ browser });
  const u = await logout(b.tokens, `${C.postLogoutRedirectUri}/not-registered`);
  assert.equal(u.status, 204, `unregistered URI: status (${u.text.slice(0, 200)})`);
  assert.equal(u.text, '', 'no body');
  await rejects(ctx.public.refresh(b.tokens.refresh_token), 'invalid_grant', 'refresh after logout (unregistered URI)');
});

// ------------------------------------------------------------------------------ runner

async function setup() {
  ctx.discovered = await Issuer.discover(C.issuer);
  ctx.metadata = split(ctx.discovered.metadata);
  ctx.issuer = new Issuer(ctx.metadata);
  ctx.public = newClient(C.publicId, undefined, 'none');
  ctx.basic = newClient(C.basicId, C.basicSecret, 'client_secret_basic');
  ctx.post = newClient(C.postId, C.postSecret, 'client_secret_post');
  // The JWKS as the issuer (instance A) publishes it: what jose verifies with.
  ctx.jwks = (await getJson(`${C.issuer}/.well-known/jwks.json`)).json;
  ctx.keySet = jose.createLocalJWKSet(ctx.jwks);
  const tag = `${Date.now().toString(36)}${crypto.randomBytes(3).toString('hex')}`;
  const password = `Conf-${crypto.randomBytes(6).toString('hex')}A1`;
  ctx.user = { email: `conformance-${tag}@example.com`, password, name: 'Conformance User' };
  ctx.user2 = { email: `conformance-${tag}-2@example.com`, password, name: 'Second User' };
  for (const u of [ctx.user, ctx.user2]) {
    await register(C.issuer, { tenant: C.tenant, clientId: C.publicId, ...u });
  }
}

async function main() {
  const args = process.argv.slice(2);
  const verbose = args.includes('-v');
  const filters = args.filter((a) => !a.startsWith('-'));
  if (LIST) {
    for (const m of MODULES) console.log(`${m.name}\n    ${m.what}`);
    return 0;
  }
  const chosen = MODULES.filter((m) => !filters.length || filters.some((f) => m.name.includes(f)));
  const t0 = Date.now();
  console.log(`oidcc-basic: issuer ${C.issuer}${C.backend ? `, back channel at ${C.backend}` : ''}; ${chosen.length} modules`);
  try {
    await setup();
  } catch (e) {
    console.log(`FAIL setup: ${e.message}`);
    if (verbose) console.log(e.stack);
    return 1;
  }
  let failed = 0;
  for (const m of chosen) {
    const started = Date.now();
    try {
      await m.fn();
      const ms = Date.now() - started;
      const known = KNOWN_SERVER_BUGS[m.name] ? ' (marked as a known server bug: it no longer fails, remove the mark)' : '';
      console.log(`PASS ${m.name} (${ms} ms)${known}`);
    } catch (e) {
      failed++;
      const known = KNOWN_SERVER_BUGS[m.name] ? ` [known server bug: ${KNOWN_SERVER_BUGS[m.name]}]` : '';
      console.log(`FAIL ${m.name}: ${String(e.message).split('\n').join(' ')}${known}`);
      if (verbose) console.log(e.stack);
    }
  }
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  console.log(`oidcc-basic: ${chosen.length - failed} passed, ${failed} failed (${secs} s)`);
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
