#!/usr/bin/env python3
"""A HelloJohn cluster on loopback, and the faults an operator meets, under load.

Three `hj serve` instances behind a real nginx configured with deploy/compose/nginx.conf (the
operator guide's upstream block), PostgreSQL through PgBouncer in transaction mode, Redis: the
test services of scripts/services.sh (their HJ_TEST_* variables must be set). Worker threads run
a closed loop through nginx: sign-up, sign-in, refresh, each answer recorded. The scenarios run
one after the other while the load goes on:

  rolling   SIGTERM each instance in turn, wait for it to drain and exit, start it again
  kill9     SIGKILL one instance, start it again
  redis     stop Redis for a few seconds, start it again
  postgres  restart PostgreSQL (scripts/services.sh restart-postgres)
  pgbouncer restart PgBouncer (scripts/services.sh restart-pgbouncer)

Then the database is checked against the answers. Pass:
  * every sign-up answered 2xx is a user with its password and a refresh family, and every
    answer 2xx of sign-up, sign-in and refresh left its refresh token (none lost);
  * no user is half written (a user without a password or a refresh family);
  * the rolling restart and the Redis outage fail zero requests;
  * after the PostgreSQL restart, requests succeed again within 5 s.

With --old-hj, instance 1 runs an earlier release the whole time (the upgrade check: both
releases serve one schema migrated by the new one, and the same checks hold).

    scripts/cluster.sh [--seconds N] [--out DIR]      (a wrapper that checks the services)
"""

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MASTER_KEY = "5c" * 32
TENANT, CLIENT, PASSWORD = "acme", "web", "Cluster-Test-Passw0rd"
SHUTDOWN_DELAY_S = 5  # above nginx's upstream keepalive_timeout (4 s in deploy/compose/nginx.conf)


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"cluster.py: {name} is not set (bash scripts/services.sh start && source .hj-test/env)")
    return value


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_database(url, db):
    head, _, query = url.partition("?")
    base = head[: head.rfind("/")] if head.count("/") > 2 else head
    return f"{base}/{db}" + (f"?{query}" if query else "")


def services(cmd):
    subprocess.run(["bash", env("HJ_TEST_SERVICES_SH"), cmd], check=True, stdout=subprocess.DEVNULL)


def psql(url, sql):
    out = subprocess.run(["psql", "-X", "-q", "-t", "-A", "-F", "\t", url, "-c", sql],
                         check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def get(port, path, timeout=2, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        r.read()
        return r.status
    except OSError:
        return 0
    finally:
        conn.close()


class Instance:
    def __init__(self, index, hj, settings, workdir):
        self.index, self.hj, self.settings = index, hj, settings
        self.port = free_port()
        self.dir = workdir / f"instance-{index}"
        self.dir.mkdir(mode=0o700)
        self.proc = None

    def start(self):
        env_vars = dict(os.environ, **self.settings,
                        HELLOJOHN_LISTEN=f"127.0.0.1:{self.port}", HELLOJOHN_DATA_DIR=str(self.dir / "data"))
        log = open(self.dir / "server.log", "ab")
        self.proc = subprocess.Popen([self.hj, "serve"], env=env_vars, stdout=log, stderr=log)
        deadline = time.time() + 30
        while get(self.port, "/health") != 200:
            if self.proc.poll() is not None or time.time() > deadline:
                sys.exit(f"cluster.py: instance {self.index} did not start (see {self.dir}/server.log)")
            time.sleep(0.1)

    def stop(self, sig):
        self.proc.send_signal(sig)
        self.proc.wait(timeout=60)


def start_nginx(port, ports, workdir):
    site = (REPO / "deploy/compose/nginx.conf").read_text()
    lines = []
    for line in site.splitlines():
        s = line.strip()
        if s.startswith("server hj-instance-"):
            i = int(s.split("hj-instance-")[1].split(":")[0])
            line = line.replace(f"hj-instance-{i}:8080", f"127.0.0.1:{ports[i - 1]}")
        if s == "listen 80;":
            line = line.replace("listen 80;", f"listen 127.0.0.1:{port};")
        lines.append(line)
    (workdir / "site.conf").write_text("\n".join(lines) + "\n")
    (workdir / "nginx.conf").write_text(f"""daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log warn;
worker_processes 1;
events {{ worker_connections 1024; }}
http {{
    access_log {workdir}/nginx-access.log combined;
    client_body_temp_path {workdir}/body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    include {workdir}/site.conf;
}}
""")
    nginx = "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "nginx"
    proc = subprocess.Popen([nginx, "-p", str(workdir), "-c", str(workdir / "nginx.conf"), "-e",
                             str(workdir / "nginx-error.log")])
    deadline = time.time() + 10
    while get(port, "/ping") != 200:
        if proc.poll() is not None or time.time() > deadline:
            sys.exit(f"cluster.py: nginx did not start (see {workdir}/nginx-error.log)")
        time.sleep(0.1)
    return proc


class Load:
    """Closed-loop workers through nginx; every answer recorded as (time, op, status, email)."""

    def __init__(self, port, workers, run):
        self.port, self.run = port, run
        self.records, self.lock = [], threading.Lock()
        self.stop = threading.Event()
        self.counter = 0
        self.threads = [threading.Thread(target=self.worker, daemon=True) for _ in range(workers)]

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)

    def post(self, conn, path, body):
        try:
            conn.request("POST", path, json.dumps(body), {"content-type": "application/json"})
            r = conn.getresponse()
            data = r.read()
            if r.getheader("connection", "").lower() == "close":
                conn.close()
            return r.status, (json.loads(data) if data[:1] == b"{" else {})
        except (OSError, http.client.HTTPException, ValueError):
            conn.close()
            return 0, {}

    def record(self, op, status, email):
        with self.lock:
            self.records.append((time.time(), op, status, email))

    def worker(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        token = None
        email = None
        while not self.stop.is_set():
            with self.lock:
                self.counter += 1
                n = self.counter
            new = f"u{self.run}-{n}@cluster.test"
            status, body = self.post(conn, "/v2/auth/register", {
                "tenant_id": TENANT, "client_id": CLIENT, "email": new, "password": PASSWORD})
            self.record("register", status, new)
            if 200 <= status < 300:
                email, token = new, body.get("refresh_token")
            if email:
                status, body = self.post(conn, "/v2/auth/login", {
                    "tenant_id": TENANT, "client_id": CLIENT, "email": email, "password": PASSWORD})
                self.record("login", status, email)
            if token:
                status, body = self.post(conn, "/v2/auth/refresh", {
                    "tenant_id": TENANT, "client_id": CLIENT, "refresh_token": token})
                self.record("refresh", status, email)
                # A refused rotation leaves the token as it was, unless it was rotated and the
                # answer lost: then the next try is a reuse, which revokes the family; start over.
                token = body.get("refresh_token") if 200 <= status < 300 else None


def summarize(records, since, until):
    counts = {}
    errors = []
    for t, op, status, _ in records:
        if since <= t < until:
            counts.setdefault(op, {}).setdefault(status, 0)
            counts[op][status] += 1
            if not 200 <= status < 300:
                errors.append(t)
    return counts, errors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hj", default=str(REPO / "target/release/hj"))
    ap.add_argument("--seconds", type=float, default=5.0, help="load before and after each fault")
    ap.add_argument("--workers", type=int, default=6)
    ap.add_argument("--scenarios", default="rolling,kill9,redis,postgres,pgbouncer")
    ap.add_argument("--out", help="write report.json here")
    ap.add_argument("--max-rolling-failures", type=int, default=0,
                    help="failed requests the rolling restart may cost (the goal, and the default, is 0)")
    ap.add_argument("--old-hj", help="an earlier release's binary for instance 1 (the upgrade check: two "
                                     "releases on one migrated schema at once; migrations run with --hj)")
    a = ap.parse_args()

    admin = env("HJ_TEST_DATABASE_URL")
    bouncer = env("HJ_TEST_PGBOUNCER_URL")
    redis = env("HJ_TEST_REDIS_URL")
    run = uuid.uuid4().hex[:8]
    db = f"hj_cluster_{run}"
    psql(admin, f"CREATE DATABASE {db}")
    direct = with_database(admin, db)
    workdir = Path(tempfile.mkdtemp(prefix="hj-cluster-"))
    base = dict(HELLOJOHN_MASTER_KEY=MASTER_KEY, HELLOJOHN_LOG="warn")
    subprocess.run([a.hj, "migrate"], env=dict(os.environ, **base, HELLOJOHN_DATABASE_URL=direct), check=True,
                   stdout=subprocess.DEVNULL)
    for cmd in (["tenant", "create", "--slug", TENANT], ["client", "create", "--tenant", TENANT, "--client-id", CLIENT]):
        subprocess.run([a.hj, *cmd], env=dict(os.environ, **base, HELLOJOHN_DATABASE_URL=direct), check=True,
                       stdout=subprocess.DEVNULL)
    settings = dict(base,
                    HELLOJOHN_DATABASE_URL=with_database(bouncer, db),
                    HELLOJOHN_REDIS_URL=redis,
                    HELLOJOHN_TRUSTED_PROXIES="127.0.0.1/32",
                    HELLOJOHN_SHARDS="1", HELLOJOHN_WORKERS="1",
                    HELLOJOHN_ARGON2_MEMORY_KIB="1024", HELLOJOHN_ARGON2_ITERATIONS="1",
                    HELLOJOHN_RATE_LIMIT_ENABLED="false",
                    HELLOJOHN_DB_MAX_OPEN_CONNS="8", HELLOJOHN_DB_MAX_IDLE_CONNS="4",
                    HELLOJOHN_SHUTDOWN_DELAY=f"{SHUTDOWN_DELAY_S}s", HELLOJOHN_DRAIN_TIMEOUT="10s")
    port = free_port()
    settings["HELLOJOHN_BASE_URL"] = f"http://127.0.0.1:{port}"
    instances = [Instance(i, a.old_hj if a.old_hj and i == 1 else a.hj, settings, workdir) for i in (1, 2, 3)]
    nginx = None
    report = {"scenarios": {}, "checks": {}, "binaries": [i.hj for i in instances]}
    failures = []
    try:
        for inst in instances:
            inst.start()
        nginx = start_nginx(port, [i.port for i in instances], workdir)
        # /metrics is not served through the public nginx, nor to a public address nginx
        # forwards; the private network (here loopback) scrapes an instance directly.
        newest = instances[-1].port
        exposure = {"via_nginx": get(port, "/metrics"), "direct": get(newest, "/metrics"),
                    "forwarded_public": get(newest, "/metrics", headers={"X-Forwarded-For": "203.0.113.9"})}
        report["metrics_exposure"] = exposure
        if exposure != {"via_nginx": 404, "direct": 200, "forwarded_public": 403}:
            failures.append(f"/metrics exposure {exposure}: expected 404 through nginx, 200 direct, 403 forwarded")
        load = Load(port, a.workers, run)
        load.start()
        time.sleep(a.seconds)
        for name in a.scenarios.split(","):
            t0 = time.time()
            time.sleep(a.seconds)
            fault = time.time()
            if name == "rolling":
                for inst in instances:
                    inst.stop(signal.SIGTERM)
                    inst.start()
            elif name == "kill9":
                instances[1].stop(signal.SIGKILL)
                time.sleep(1)
                instances[1].start()
            elif name == "redis":
                services("stop-redis")
                time.sleep(3)
                services("start-redis")
            elif name == "postgres":
                services("restart-postgres")
            elif name == "pgbouncer":
                services("restart-pgbouncer")
            else:
                sys.exit(f"cluster.py: unknown scenario {name}")
            recovered = time.time()
            time.sleep(a.seconds)
            # The window goes on until requests have succeeded for 2 s in a row (at most 60 s),
            # so that a slow recovery is measured, not cut off.
            deadline = time.time() + 60
            while time.time() < deadline:
                _, errs = summarize(load.records, time.time() - 2, time.time())
                if not errs:
                    break
                time.sleep(0.5)
            counts, errors = summarize(load.records, t0, time.time())
            entry = {"counts": counts, "fault_s": round(recovered - fault, 2), "errors": len(errors)}
            if errors:
                entry["errors_from_s"] = round(min(errors) - fault, 2)
                entry["errors_until_s"] = round(max(errors) - fault, 2)
            report["scenarios"][name] = entry
            print(f"cluster.py: {name}: {json.dumps(entry)}", flush=True)
            if name == "redis" and errors:
                failures.append(f"redis: {len(errors)} requests failed, none may")
            if name == "rolling" and len(errors) > a.max_rolling_failures:
                failures.append(f"rolling: {len(errors)} requests failed, at most {a.max_rolling_failures} may")
            if name == "postgres" and errors and max(errors) - recovered > 5:
                failures.append(f"postgres: errors until {max(errors) - recovered:.1f} s after the restart (at most 5 s)")
        load.finish()

        ok = {"register": set(), "any": 0}
        for _, op, status, email in load.records:
            if 200 <= status < 300:
                ok["any"] += 1
                if op == "register":
                    ok["register"].add(email)
        users = {r[0] for r in psql(direct, "SELECT email FROM users")}
        lost = sorted(ok["register"] - users)
        half = psql(direct, """SELECT u.email FROM users u
            WHERE NOT EXISTS (SELECT 1 FROM password_identities p WHERE p.user_id = u.id)
               OR NOT EXISTS (SELECT 1 FROM refresh_families f WHERE f.user_id = u.id)""")
        tokens = int(psql(direct, "SELECT count(*) FROM refresh_tokens")[0][0])
        report["checks"] = {"sign_ups_2xx": len(ok["register"]), "users": len(users), "lost_sign_ups": lost[:20],
                            "half_written_users": [h[0] for h in half][:20], "answers_2xx": ok["any"],
                            "refresh_tokens": tokens}
        print(f"cluster.py: checks: {json.dumps(report['checks'])}", flush=True)
        if lost:
            failures.append(f"{len(lost)} sign-ups answered 2xx are not in the database")
        if half:
            failures.append(f"{len(half)} users are half written")
        if tokens < ok["any"]:
            failures.append(f"{ok['any']} answers 2xx but {tokens} refresh tokens: writes were lost")
        if not ok["register"]:
            failures.append("no sign-up succeeded at all")
    finally:
        for inst in instances:
            if inst.proc and inst.proc.poll() is None:
                inst.proc.kill()
        if nginx:
            nginx.terminate()
        try:
            psql(admin, f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        except subprocess.CalledProcessError:
            pass
    report["failures"] = failures
    if a.out:
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    if failures:
        print("cluster.py: FAILED\n  " + "\n  ".join(failures), file=sys.stderr)
        print(f"cluster.py: logs in {workdir}", file=sys.stderr)
        sys.exit(1)
    print("cluster.py: ok")


if __name__ == "__main__":
    main()
