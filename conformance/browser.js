#!/usr/bin/env node
'use strict';
// The hosted sign-in page in a real browser: headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core) opens an authorization URL of the public client, sees the page
// (the tenant's name in the heading, the form), saves a screenshot, submits a wrong password
// (the error line, the email kept), then the right one, and must land on the redirect URI,
// served by a small HTTP server started here, with code, state and iss; openid-client then
// redeems the code. Reads the same environment as oidcc-basic.js, plus:
//
//   HJ_CALLBACK_PORT   the port of HJ_REDIRECT_URI (the landing server listens there)
//   HJ_TENANT_NAME     the tenant's display name the heading must show
//   HJ_SCREENSHOT      where to save the screenshot (PNG)
//   HJ_CHROMIUM        the browser (default /usr/bin/chromium)
//
// Prints `PASS step` / `FAIL step: reason` per step; exits 1 when any failed.

const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { Issuer, generators } = require('openid-client');
const { chromium } = require('playwright-core');
const { assert, env, register, trimSlash } = require('./lib');

const C = {
  issuer: trimSlash(env('HJ_ISSUER')),
  tenant: env('HJ_TENANT', 'local'),
  tenantName: env('HJ_TENANT_NAME'),
  clientId: env('HJ_PUBLIC_CLIENT_ID'),
  redirectUri: env('HJ_REDIRECT_URI'),
  callbackPort: Number(env('HJ_CALLBACK_PORT')),
  screenshot: env('HJ_SCREENSHOT'),
  chromium: env('HJ_CHROMIUM', '/usr/bin/chromium'),
};

// Steps that fail because of a known server bug stay in the suite (and keep failing it): name
// -> the bug. None at present.
const KNOWN_SERVER_BUGS = {};

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Containers often have a 64 MB /dev/shm, too small for Chromium's shared memory.
  '--disable-dev-shm-usage',
];

/** The redirect URI's server: a plain page, and the query strings it was called with. */
function landingServer() {
  const hits = [];
  const server = http.createServer((req, res) => {
    // Chromium asks every new origin for its icon: not a visit of the redirect URI.
    if (req.url.startsWith('/favicon')) {
      res.writeHead(404);
      res.end();
      return;
    }
    hits.push(req.url);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>Conformance RP</title><h1>Back at the app</h1>');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(C.callbackPort, '127.0.0.1', () => resolve({ server, hits }));
  });
}

/** The steps, each reported as PASS or FAIL; a step that needs a failed one is not run. */
const STEPS = [];
const step = (name, needs, fn) => STEPS.push({ name, needs, fn });

async function run() {
  const tag = `${Date.now().toString(36)}${crypto.randomBytes(3).toString('hex')}`;
  const user = { email: `browser-${tag}@example.com`, password: `Brow-${crypto.randomBytes(6).toString('hex')}A1`, name: 'Browser User' };
  await register(C.issuer, { tenant: C.tenant, clientId: C.clientId, ...user });

  const issuer = await Issuer.discover(C.issuer);
  const client = new issuer.Client({ client_id: C.clientId, token_endpoint_auth_method: 'none', redirect_uris: [C.redirectUri] });
  const state = generators.state();
  const nonce = generators.nonce();
  const verifier = generators.codeVerifier();
  const url = client.authorizationUrl({
    scope: 'openid email profile',
    state,
    nonce,
    code_challenge: generators.codeChallenge(verifier),
    code_challenge_method: 'S256',
  });

  const { server, hits } = await landingServer();
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'hj-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: C.chromium,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 720, height: 480 },
      timeout: 30000,
    });
    const page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(15000);
    // For the failure messages: the headers of the last form post, and what the browser
    // blocked (Content Security Policy violations are reported on the console).
    let lastPost = Promise.resolve({});
    page.on('request', (r) => {
      if (r.method() === 'POST') lastPost = r.allHeaders().catch(() => ({}));
    });
    const blocked = [];
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) blocked.push(m.text().replace(/\s+/g, ' ').trim());
    });
    const answer = async (resp) => {
      const h = await lastPost;
      let what;
      if (!resp) what = 'no response';
      else if (resp.error) what = `the navigation failed (${String(resp.error.message).split('\n')[0]})`;
      else what = `${resp.status()} ${(await resp.text()).replace(/\s+/g, ' ').slice(0, 200)}`;
      const csp = blocked.length ? `; the browser reported: ${blocked[blocked.length - 1]}` : '';
      return `${what} (the form post carried Origin: ${h.origin}, Sec-Fetch-Site: ${h['sec-fetch-site']})${csp}`;
    };
    const submit = async () => {
      const nav = page.waitForNavigation({ waitUntil: 'load' }).catch((error) => ({ error }));
      await page.click('button[type="submit"]');
      return nav;
    };
    const atPage = () => new URL(page.url()).pathname === '/oauth2/login';

    step('chromium-hosted-page', [], async () => {
      const first = await page.goto(url);
      assert.equal(first.status(), 200, 'the sign-in page answers 200');
      assert.ok(atPage(), `the browser is at the sign-in page (${page.url()})`);
      assert.equal((await page.locator('h1').innerText()).trim(), `Sign in to ${C.tenantName}`, 'heading names the tenant');
      assert.match(await page.locator('p.sub').innerText(), /Conformance RP/, 'the client is named');
      assert.equal(await page.locator('form[method="post"][action="/oauth2/login"]').count(), 1, 'the form');
      assert.equal(await page.locator('input#email[type="email"]').count(), 1, 'the email input');
      assert.equal(await page.locator('input#password[type="password"]').count(), 1, 'the password input');
      assert.equal(await page.locator('input[type="hidden"][name="csrf_token"]').count(), 1, 'the CSRF token');
      assert.equal(await page.title(), `Sign in to ${C.tenantName}`, 'title');
      fs.mkdirSync(path.dirname(path.resolve(C.screenshot)), { recursive: true });
      await page.screenshot({ path: C.screenshot, fullPage: true });
    });

    step('chromium-wrong-password', ['chromium-hosted-page'], async () => {
      await page.fill('#email', user.email);
      await page.fill('#password', `${user.password}-wrong`);
      const resp = await submit();
      assert.ok(resp && !resp.error && resp.status() === 401, `a wrong password answers 401, not ${await answer(resp)}`);
      assert.ok(atPage(), 'still on the sign-in page');
      assert.equal((await page.locator('p.error[role="alert"]').innerText()).trim(), 'Invalid email or password.', 'the error line');
      assert.equal(await page.inputValue('#email'), user.email, 'the email is kept');
      assert.equal(hits.length, 0, 'nothing reached the redirect URI');
    });

    step('chromium-sign-in', ['chromium-hosted-page'], async () => {
      if (!atPage() || (await page.locator('#password').count()) === 0) await page.goto(url);
      await page.fill('#email', user.email);
      await page.fill('#password', user.password);
      const resp = await submit();
      assert.ok(page.url().startsWith(`${C.redirectUri}?`), `the browser lands on the redirect URI, not ${page.url().split('?')[0]}: ${await answer(resp)}`);
      const landed = new URL(page.url());
      assert.ok(landed.searchParams.get('code'), 'code');
      assert.equal(landed.searchParams.get('state'), state, 'state');
      assert.equal(landed.searchParams.get('iss'), C.issuer, 'iss');
      assert.equal((await page.locator('h1').innerText()).trim(), 'Back at the app', 'the app page is shown');
      assert.equal(hits.length, 1, 'the redirect URI was called once');
      // The code is good: openid-client redeems it (state, iss, nonce, PKCE, ID token).
      const tokens = await client.callback(C.redirectUri, client.callbackParams(page.url()), {
        response_type: 'code',
        state,
        nonce,
        code_verifier: verifier,
      });
      assert.equal(tokens.claims().email, user.email, 'the ID token is the user');
    });

    step('chromium-session-reused', ['chromium-sign-in'], async () => {
      const again = client.authorizationUrl({
        scope: 'openid',
        state: generators.state(),
        code_challenge: generators.codeChallenge(generators.codeVerifier()),
        code_challenge_method: 'S256',
      });
      await page.goto(again);
      assert.ok(page.url().startsWith(`${C.redirectUri}?`), `a second authorization lands at the app at once (${page.url()})`);
    });

    let failed = 0;
    const passed = new Set();
    for (const s of STEPS) {
      const missing = s.needs.filter((n) => !passed.has(n));
      if (missing.length) {
        failed++;
        console.log(`FAIL ${s.name}: not run (needs ${missing.join(', ')})`);
        continue;
      }
      const t0 = Date.now();
      try {
        await s.fn();
        passed.add(s.name);
        const known = KNOWN_SERVER_BUGS[s.name] ? ' (marked as a known server bug: it no longer fails, remove the mark)' : '';
        console.log(`PASS ${s.name} (${Date.now() - t0} ms)${known}`);
      } catch (e) {
        failed++;
        const known = KNOWN_SERVER_BUGS[s.name] ? ` [known server bug: ${KNOWN_SERVER_BUGS[s.name]}]` : '';
        console.log(`FAIL ${s.name}: ${String(e.message).split('\n').join(' ')}${known}`);
        if (process.argv.includes('-v')) console.log(e.stack);
      }
    }
    if (passed.has('chromium-hosted-page')) console.log(`screenshot: ${C.screenshot}`);
    return failed;
  } finally {
    if (context) await context.close().catch(() => {});
    server.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

const t0 = Date.now();
run().then(
  (failed) => {
    console.log(`browser: ${STEPS.length - failed} passed, ${failed} failed (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    process.exit(failed ? 1 : 0);
  },
  (e) => {
    console.log(`FAIL browser setup: ${String(e.message).split('\n').join(' ')}`);
    if (process.argv.includes('-v')) console.log(e.stack);
    process.exit(1);
  },
);
