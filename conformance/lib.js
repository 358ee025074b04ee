'use strict';
// Shared by the conformance runners: configuration from the environment, a scripted browser
// (fetch with a cookie jar and manual redirects) that walks the authorization-code flow
// through the hosted sign-in page, and small assertion helpers.

const assert = require('node:assert/strict');

const USER_AGENT = 'hellojohn-conformance/1 (openid-client)';

/** The value of an environment variable; `fallback` when unset, else a usage error. */
function env(name, fallback) {
  const v = process.env[name];
  if (v === undefined || v === '') {
    if (fallback === undefined) {
      console.error(`conformance: set ${name} (see scripts/conformance.sh)`);
      process.exit(2);
    }
    return fallback;
  }
  return v;
}

const trimSlash = (u) => u.replace(/\/+$/, '');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Undoes the escaping of HTML attribute values and text (the hosted page's `escape`). */
function unescapeHtml(s) {
  return s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&');
}

/** The hosted sign-in page's form: hidden fields, the email input's value, the error line. */
function parseLoginPage(html) {
  const attr = (re) => {
    const m = html.match(re);
    return m ? unescapeHtml(m[1]) : undefined;
  };
  return {
    csrfToken: attr(/<input type="hidden" name="csrf_token" value="([^"]*)"/),
    returnTo: attr(/<input type="hidden" name="return_to" value="([^"]*)"/),
    email: attr(/<input id="email"[^>]*\svalue="([^"]*)"/),
    heading: attr(/<h1>([^<]*)<\/h1>/),
    error: attr(/<p class="error" role="alert">([^<]*)<\/p>/),
    hasForm: /<form method="post" action="\/oauth2\/login">/.test(html),
  };
}

/**
 * A scripted browser: one cookie jar (by name: every server of a run is 127.0.0.1, and
 * browsers do not separate cookies by port either), redirects followed by hand.
 */
class Browser {
  constructor() {
    this.jar = new Map();
  }

  cookie(name) {
    return this.jar.get(name);
  }

  keep(headers) {
    for (const line of headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const at = pair.indexOf('=');
      if (at <= 0) continue;
      const name = pair.slice(0, at).trim();
      const value = pair.slice(at + 1).trim();
      const gone = attrs.some((a) => /^\s*max-age\s*=\s*0\s*$/i.test(a));
      if (gone || value === '') this.jar.delete(name);
      else this.jar.set(name, value);
    }
  }

  /** One request, no redirect followed: `{status, location (absolute), headers, text, url}`. */
  async request(url, { method = 'GET', form, headers = {} } = {}) {
    const h = { 'user-agent': USER_AGENT, ...headers };
    if (this.jar.size) h.cookie = [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
    let body;
    if (form) {
      body = new URLSearchParams(form).toString();
      h['content-type'] = 'application/x-www-form-urlencoded';
    }
    const res = await fetch(url, { method, headers: h, body, redirect: 'manual' });
    this.keep(res.headers);
    const text = await res.text();
    const loc = res.headers.get('location');
    return {
      url,
      status: res.status,
      headers: res.headers,
      location: loc === null ? null : new URL(loc, url).href,
      text,
    };
  }
}

/**
 * Walks an authorization request the way a browser would: follows the server's redirects, and
 * when the hosted sign-in page shows, fills it in with `user` (or stops there when `user` is
 * null). Returns `{callback}` (the URL the browser was sent to at the redirect URI) or
 * `{stopped}` (the last response: a page), with `pages`: every sign-in page seen, parsed, and
 * `signedInAt`: when the last sign-in's 303 arrived (ms).
 */
async function authorize(browser, url, { redirectUri, user, method = 'GET' } = {}) {
  const out = { pages: [], signedInAt: undefined };
  let res;
  if (method === 'POST') {
    const u = new URL(url);
    const form = Object.fromEntries(u.searchParams);
    res = await browser.request(`${u.origin}${u.pathname}`, { method: 'POST', form });
  } else {
    res = await browser.request(url);
  }
  for (let hop = 0; hop < 10; hop++) {
    if (![302, 303].includes(res.status) || !res.location) return { ...out, stopped: res };
    const loc = new URL(res.location);
    if (res.location.split('?')[0] === redirectUri) return { ...out, callback: res.location };
    if (loc.pathname === '/oauth2/login') {
      const page = await browser.request(res.location);
      const parsed = { ...parseLoginPage(page.text), status: page.status, url: res.location };
      out.pages.push(parsed);
      if (page.status !== 200 || !user) return { ...out, stopped: page };
      assert.ok(parsed.csrfToken && parsed.returnTo, 'the sign-in page has csrf_token and return_to');
      const post = await browser.request(new URL('/oauth2/login', loc).href, {
        method: 'POST',
        form: {
          csrf_token: parsed.csrfToken,
          return_to: parsed.returnTo,
          email: user.email,
          password: user.password,
        },
      });
      if (post.status !== 303) {
        const again = parseLoginPage(post.text);
        throw new Error(
          `sign-in as ${user.email} answered ${post.status}` + (again.error ? `: ${again.error}` : ''),
        );
      }
      out.signedInAt = Date.now();
      res = await browser.request(post.location);
      continue;
    }
    res = await browser.request(res.location);
  }
  throw new Error(`more than 10 redirects from ${url}`);
}

/** Fetches JSON (no cookies): `{status, headers, json, text}`. */
async function getJson(url, init = {}) {
  const res = await fetch(url, {
    ...init,
    headers: { 'user-agent': USER_AGENT, ...(init.headers || {}) },
    redirect: 'manual',
  });
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json, text };
}

/** Signs a user up through the API (`POST /v2/auth/register`). */
async function register(base, { tenant, clientId, email, password, name }) {
  const r = await getJson(`${base}/v2/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ tenant_id: tenant, client_id: clientId, email, password, name }),
  });
  if (r.status !== 200 && r.status !== 201) {
    throw new Error(`register ${email}: ${r.status} ${r.text.slice(0, 300)}`);
  }
  return r.json;
}

module.exports = {
  assert,
  Browser,
  USER_AGENT,
  authorize,
  env,
  getJson,
  parseLoginPage,
  register,
  sleep,
  trimSlash,
  unescapeHtml,
};
