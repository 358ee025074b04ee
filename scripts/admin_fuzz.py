#!/usr/bin/env python3
"""The fixtures of scripts/admin-fuzz.sh, made through the admin API of a running server, and
the schemathesis configuration that points the fuzzer's path parameters at them.

    admin_fuzz.py URL API_KEY OUT_DIR

Writes OUT_DIR/schemathesis.toml (the run's settings and path parameters) and
OUT_DIR/bearer (an admin's access token, for the /v2/admin/me routes). Standard library only.
"""
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

PASSWORD = "Fuzz-Admin-Password-42"


def call(url, key, method, path, body=None, bearer=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method)
    if key:
        req.add_header("X-API-Key", key)
    if bearer:
        req.add_header("Authorization", "Bearer " + bearer)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            text = resp.read()
            status = resp.status
    except urllib.error.HTTPError as e:
        text, status = e.read(), e.code
    if status >= 300:
        sys.exit(f"admin_fuzz.py: {method} {path}: {status} {text[:300]!r}")
    return json.loads(text) if text else None


def toml_string(value):
    return json.dumps(value)  # a JSON string is a TOML basic string


def main():
    url, key, out = sys.argv[1].rstrip("/"), sys.argv[2], Path(sys.argv[3])
    tenant = call(url, key, "POST", "/v2/admin/tenants", {"slug": "fuzz", "name": "Fuzz"})
    doomed_tenant = call(url, key, "POST", "/v2/admin/tenants", {"slug": "fuzz-doomed"})
    t = f"/v2/admin/tenants/{tenant['id']}"
    call(url, key, "POST", t + "/clients", {
        "client_id": "fuzz-app", "name": "Fuzz app", "type": "confidential",
        "redirect_uris": ["https://app.fuzz.test/cb"], "allowed_origins": ["https://app.fuzz.test"],
        "grant_types": ["authorization_code", "refresh_token", "client_credentials"],
    })
    call(url, key, "POST", t + "/clients", {"client_id": "fuzz-doomed"})
    victim_key = call(url, key, "POST", "/v2/admin/api-keys",
                      {"name": "victim", "scope": "readonly"})
    rotated_key = call(url, key, "POST", "/v2/admin/api-keys",
                       {"name": "rotated", "scope": "tenant:fuzz", "expires_in": "30d"})
    admin = call(url, key, "POST", "/v2/admin/admins",
                 {"email": "victim@fuzz.test", "password": PASSWORD, "scope": "tenant:fuzz"})
    doomed_admin = call(url, key, "POST", "/v2/admin/admins",
                        {"email": "doomed@fuzz.test", "password": PASSWORD})
    call(url, key, "POST", "/v2/admin/admins", {"email": "fuzzer@fuzz.test", "password": PASSWORD})
    signed_in = call(url, None, "POST", "/v2/admin/login",
                     {"email": "fuzzer@fuzz.test", "password": PASSWORD})
    # Users: one to act on, one to delete, and one signed in through a client of the tenant,
    # whose refresh token (and session, where a sign-in makes one) the token and session
    # operations are pointed at.
    call(url, key, "POST", t + "/clients", {"client_id": "fuzz-login", "name": "Fuzz login"})
    user = call(url, key, "POST", t + "/users",
                {"email": "user@fuzz.test", "password": PASSWORD, "name": "Fuzz user"})
    doomed_user = call(url, key, "POST", t + "/users", {"email": "doomed-user@fuzz.test"})
    signer = call(url, key, "POST", t + "/users",
                  {"email": "signer@fuzz.test", "password": PASSWORD, "email_verified": True})
    call(url, None, "POST", "/v2/auth/login", {"tenant_id": "fuzz", "client_id": "fuzz-login",
                                               "email": "signer@fuzz.test", "password": PASSWORD})
    token = call(url, key, "GET", t + f"/tokens?user_id={signer['id']}")["tokens"][0]
    sessions = call(url, key, "GET", t + f"/sessions?user_id={signer['id']}")["sessions"]
    hook = call(url, key, "POST", t + "/webhooks",
                {"url": "http://127.0.0.1:9/hook", "events": ["*"]})
    doomed_hook = call(url, key, "POST", t + "/webhooks",
                       {"url": "http://127.0.0.1:9/doomed", "events": ["*"]})
    entry = call(url, key, "GET", t + "/audit-logs?limit=1")["items"][0]

    # Every operation gets the fixtures as its path parameters, so that it reaches its handler
    # with something to act on; the deletions get doomed ones of their own, so that a deletion
    # early in the run leaves the other operations theirs. Each section names one operation
    # (`METHOD path`): where several sections match, schemathesis merges them.
    k, a = "/v2/admin/api-keys/{id}", "/v2/admin/admins/{id}"
    tt = "/v2/admin/tenants/{tenant_id}"
    u, tk = tt + "/users/{user_id}", tt + "/tokens/{token_id}"
    se, w = tt + "/sessions/{session_id}", tt + "/webhooks/{webhook_id}"
    sections = [
        ("DELETE /v2/admin/tenants/{tenant_id}", {"path.tenant_id": doomed_tenant["id"]}),
        ("DELETE /v2/admin/tenants/{tenant_id}/clients/{client_id}",
         {"path.client_id": "fuzz-doomed"}),
        (f"DELETE {a}", {"path.id": doomed_admin["id"]}),
        (f"GET {k}", {"path.id": victim_key["id"]}),
        (f"DELETE {k}", {"path.id": victim_key["id"]}),
        (f"POST {k}/rotate", {"path.id": rotated_key["id"]}),
        *((op, {"path.id": admin["id"]}) for op in (f"GET {a}", f"PUT {a}", f"PATCH {a}",
                                                    f"POST {a}/disable", f"POST {a}/enable")),
        ("GET /v2/admin/tenants/{tenant_id}/audit-logs/{id}", {"path.id": entry["id"]}),
        (f"DELETE {u}", {"path.user_id": doomed_user["id"]}),
        *((op, {"path.user_id": user["id"]})
          for op in (f"GET {u}", f"PUT {u}", f"PATCH {u}", f"POST {u}/set-password",
                     f"POST {u}/disable", f"POST {u}/enable", f"POST {u}/set-email-verified")),
        *((op, {"path.token_id": token["id"]}) for op in (f"GET {tk}", f"DELETE {tk}")),
        *((op, {"path.session_id": sessions[0]["id"]})
          for op in (f"GET {se}", f"POST {se}/revoke") if sessions),
        (f"DELETE {w}", {"path.webhook_id": doomed_hook["id"]}),
        *((op, {"path.webhook_id": hook["id"]})
          for op in (f"GET {w}", f"PUT {w}", f"PATCH {w}", f"GET {w}/deliveries",
                     f"POST {w}/test")),
    ]
    lines = [
        # No state kept between runs (schemathesis would replay earlier failures first, from a
        # directory in the working tree): each run is its seed's.
        "cache.enabled = false",
        # Ids seen in answers are not reused as inputs: the fuzzer would find its own key and
        # account in the lists and revoke or delete them, and the run would depend on timing.
        *(f"phases.{p}.extra-data-sources.responses = false"
          for p in ("examples", "coverage", "fuzzing")),
        "",
        "[parameters]",
        f'"path.tenant_id" = {toml_string(tenant["id"])}',
        f'"path.client_id" = {toml_string("fuzz-app")}',
        "",
    ]
    for name, params in sections:
        lines += ["[[operations]]", f"include-name = {toml_string(name)}",
                  "parameters = { " + ", ".join(f"{toml_string(k)} = {toml_string(v)}"
                                                for k, v in params.items()) + " }", ""]
    (out / "schemathesis.toml").write_text("\n".join(lines))
    (out / "bearer").write_text(signed_in["access_token"])


if __name__ == "__main__":
    main()
