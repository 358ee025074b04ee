#!/usr/bin/env python3
"""Checks the deployment kit against the code, offline: Dockerfile, deploy/compose,
deploy/kubernetes, deploy/prometheus, deploy/grafana.

No container engine or cluster is needed (none can be reached here): the files are parsed and
checked for what would break a deployment: settings the engine does not know, probes on routes it
does not serve, a grace period shorter than its drain, metrics it does not export, COPY sources
that do not exist, a Secret key nobody defines. `scripts/check-deploy.sh` runs this with the
external checkers (yamllint, promtool, nginx -t).

    python3 scripts/check_deploy.py [REPO]
"""

import json
import re
import sys
from pathlib import Path

import yaml

REPO = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
problems = []


def fail(where, message):
    problems.append(f"{where}: {message}")


def text(rel):
    return (REPO / rel).read_text()


# ----- what the code defines --------------------------------------------------------------

SETTINGS = set(re.findall(r'(?:s|secret)\(\s*"(HELLOJOHN_[A-Z0-9_]+)"', text("engine/src/config/settings.rs")))
ROUTES = set(re.findall(r'=> "(/[^"]*)"', text("engine/src/router.rs")))
METRICS = set(re.findall(r"hellojohn_[a-z0-9_]+", text("engine/src/metrics.rs")))
SUBCOMMANDS = set(
    name
    for path in sorted((REPO / "hj/src").glob("*.rs"))
    for name in re.findall(r'Command::new\("([a-z]+)"\)', path.read_text())
)
RUST_VERSION = re.search(r'rust-version = "([0-9.]+)"', text("Cargo.toml")).group(1)

if len(SETTINGS) < 30 or not {"/health", "/ping", "/metrics"} <= ROUTES or len(METRICS) < 20:
    fail("check_deploy.py", "could not read the settings, routes or metrics from the code")
if not {"serve", "migrate", "tenant", "client"} <= SUBCOMMANDS:
    fail("check_deploy.py", f"could not read hj's subcommands (found {sorted(SUBCOMMANDS)})")


def duration_s(value, where):
    m = re.fullmatch(r"(\d+)(ms|s|m|h)?", str(value).strip())
    if not m:
        fail(where, f"not a simple duration: {value!r}")
        return 0.0
    scale = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]
    return int(m.group(1)) * scale


def check_env(names, where):
    for name in names:
        if name.startswith("HELLOJOHN_") and name not in SETTINGS:
            fail(where, f"{name} is not a setting of the engine (engine/src/config/settings.rs)")


def check_metrics(expr, where):
    for name in re.findall(r"hellojohn_[a-z0-9_]+", expr):
        if name not in METRICS:
            fail(where, f"{name} is not exported by the engine (engine/src/metrics.rs)")


# ----- Dockerfile --------------------------------------------------------------------------

docker = text("Dockerfile")
for line in docker.splitlines():
    m = re.match(r"COPY (?!--from)(.+) (\S+)$", line.strip())
    if m:
        for src in m.group(1).split():
            if not (REPO / src).exists():
                fail("Dockerfile", f"COPY source {src} does not exist")
if "--locked" not in docker:
    fail("Dockerfile", "the release build must use --locked")
m = re.search(r"FROM rust:([0-9.]+)-bookworm AS build", docker)
if not m:
    fail("Dockerfile", "the build stage must be a pinned rust:X.Y-bookworm image")
elif tuple(map(int, m.group(1).split("."))) < tuple(map(int, RUST_VERSION.split(".")))[:2]:
    fail("Dockerfile", f"rust {m.group(1)} is older than the workspace's rust-version {RUST_VERSION}")
user = re.search(r"^USER (\S+)", docker, re.M)
if not user or user.group(1).split(":")[0] in ("root", "0"):
    fail("Dockerfile", "the runtime must run as a non-root USER")
for needle in ("EXPOSE 8080", "STOPSIGNAL SIGTERM", 'VOLUME ["/data"]', "HELLOJOHN_DATA_DIR=/data"):
    if needle not in docker:
        fail("Dockerfile", f"missing {needle}")
health = re.search(r"HEALTHCHECK .*GET (/\S+) HTTP", docker, re.S)
if not health or health.group(1) not in ROUTES:
    fail("Dockerfile", "HEALTHCHECK must request a route the server serves")
cmd = re.search(r'^CMD \["(\w+)"\]', docker, re.M)
if not cmd or cmd.group(1) not in SUBCOMMANDS:
    fail("Dockerfile", "CMD must be an hj subcommand")
check_env(re.findall(r"(HELLOJOHN_[A-Z0-9_]+)=", docker), "Dockerfile")

# ----- compose -----------------------------------------------------------------------------

compose = yaml.safe_load(text("deploy/compose/compose.yaml"))
services = compose.get("services", {})
want = {"postgres", "pgbouncer", "redis", "migrate", "hj-instance-1", "hj-instance-2", "hj-instance-3", "nginx"}
if set(services) != want:
    fail("compose.yaml", f"services {sorted(services)}, expected {sorted(want)}")
bouncer = services.get("pgbouncer", {}).get("environment", {})
for key, value in (("POOL_MODE", "transaction"), ("MAX_CLIENT_CONN", "1000"), ("DEFAULT_POOL_SIZE", "25")):
    if str(bouncer.get(key)) != value:
        fail("compose.yaml", f"pgbouncer {key} must be {value} (the operator guide's settings)")
instances = [services.get(f"hj-instance-{i}", {}) for i in (1, 2, 3)]
envs = [inst.get("environment", {}) for inst in instances]
for key in ("HELLOJOHN_MASTER_KEY", "HELLOJOHN_BASE_URL", "HELLOJOHN_DATABASE_URL", "HELLOJOHN_REDIS_URL"):
    values = {e.get(key) for e in envs}
    if len(values) != 1 or None in values:
        fail("compose.yaml", f"the three instances must share one {key}")
for i, env in enumerate(envs, 1):
    check_env(env, f"compose.yaml hj-instance-{i}")
    if "@pgbouncer:" not in str(env.get("HELLOJOHN_DATABASE_URL", "")):
        fail("compose.yaml", f"hj-instance-{i} must reach PostgreSQL through PgBouncer")
nginx_ip = services.get("nginx", {}).get("networks", {}).get("hellojohn", {}).get("ipv4_address")
if not nginx_ip or envs[0].get("HELLOJOHN_TRUSTED_PROXIES") != f"{nginx_ip}/32":
    fail("compose.yaml", "HELLOJOHN_TRUSTED_PROXIES must be nginx's fixed address (and only it)")
grace = duration_s(instances[0].get("stop_grace_period", "10s"), "compose.yaml")
delay = duration_s(envs[0].get("HELLOJOHN_SHUTDOWN_DELAY", "0s"), "compose.yaml")
drain = duration_s(envs[0].get("HELLOJOHN_DRAIN_TIMEOUT", "30s"), "compose.yaml")
if grace <= delay + drain:
    fail("compose.yaml", f"stop_grace_period {grace}s must exceed shutdown delay + drain timeout ({delay + drain}s)")
migrate = services.get("migrate", {})
if (migrate.get("command") or [None])[0] != "migrate" or migrate.get("restart") != "no":
    fail("compose.yaml", "migrate must be a one-shot `hj migrate`")
check_env(migrate.get("environment", {}), "compose.yaml migrate")
for inst in instances:
    if inst.get("depends_on", {}).get("migrate", {}).get("condition") != "service_completed_successfully":
        fail("compose.yaml", "instances must start after the migration completed")

nginx = text("deploy/compose/nginx.conf")
for needle in ("least_conn;", "keepalive 32;", 'proxy_set_header Connection "";', "proxy_http_version 1.1;",
               "proxy_set_header X-Real-IP $remote_addr;",
               "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
               "proxy_set_header X-Forwarded-Proto $scheme;", "proxy_set_header Host $host;"):
    if needle not in nginx:
        fail("nginx.conf", f"missing the operator guide's `{needle}`")
keepalive = re.search(r"keepalive_timeout (\d+)s;", nginx)
if not keepalive or int(keepalive.group(1)) >= delay:
    fail("nginx.conf", f"the upstream keepalive_timeout must be shorter than HELLOJOHN_SHUTDOWN_DELAY ({delay}s)")
if not re.search(r"location = /metrics \{\s*return 404;\s*\}", nginx):
    fail("nginx.conf", "the public server must not forward /metrics (`location = /metrics { return 404; }`)")


def check_metrics_allow(value, where):
    """HELLOJOHN_METRICS_ALLOW must not open /metrics to every address."""
    for net in str(value or "").split(","):
        net = net.strip()
        if net.endswith("/0") or net in ("0.0.0.0", "::"):
            fail(where, f"HELLOJOHN_METRICS_ALLOW {net} serves the metrics to everyone")


for i, env in enumerate(envs, 1):
    check_metrics_allow(env.get("HELLOJOHN_METRICS_ALLOW"), f"compose.yaml hj-instance-{i}")
for i in (1, 2, 3):
    if f"server hj-instance-{i}:8080" not in nginx:
        fail("nginx.conf", f"hj-instance-{i} is not in the upstream")

# ----- Kubernetes --------------------------------------------------------------------------

docs = {}
for path in sorted((REPO / "deploy/kubernetes").glob("*.yaml")):
    for doc in yaml.safe_load_all(path.read_text()):
        if not doc:
            continue
        where = f"kubernetes/{path.name}"
        for key in ("apiVersion", "kind"):
            if key not in doc:
                fail(where, f"a document without {key}")
        if doc.get("kind") != "Kustomization" and not doc.get("metadata", {}).get("name"):
            fail(where, "a document without metadata.name")
        docs.setdefault(doc.get("kind"), []).append((where, doc))

secret_keys = set()
for where, doc in docs.get("Secret", []):
    secret_keys |= set(doc.get("stringData", {})) | set(doc.get("data", {}))


def check_pod(where, spec):
    for c in spec.get("containers", []):
        env = c.get("env", [])
        check_env([e["name"] for e in env], where)
        for e in env:
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref and ref.get("key") not in secret_keys:
                fail(where, f"{e['name']} reads Secret key {ref.get('key')!r}, which secret.example.yaml does not define")
        if (c.get("args") or [None])[0] not in SUBCOMMANDS:
            fail(where, f"container {c.get('name')} runs {c.get('args')}, not an hj subcommand")
    security = spec.get("securityContext", {})
    if not security.get("runAsNonRoot"):
        fail(where, "pods must run as non-root")


pod_labels = {}
for where, doc in docs.get("Deployment", []):
    spec = doc["spec"]["template"]["spec"]
    pod_labels = doc["spec"]["template"]["metadata"]["labels"]
    if doc["spec"]["selector"]["matchLabels"].items() - pod_labels.items():
        fail(where, "the selector does not match the pod labels")
    check_pod(where, spec)
    c = spec["containers"][0]
    env = {e["name"]: e.get("value") for e in c.get("env", [])}
    probes = {"readinessProbe": "/health", "livenessProbe": "/ping"}
    for probe, path in probes.items():
        got = c.get(probe, {}).get("httpGet", {}).get("path")
        if got != path:
            fail(where, f"{probe} must be GET {path} (got {got})")
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        got = c.get(probe, {}).get("httpGet", {}).get("path")
        if got and got not in ROUTES:
            fail(where, f"{probe} requests {got}, which the server does not serve")
    check_metrics_allow(env.get("HELLOJOHN_METRICS_ALLOW"), where)
    if [p.get("containerPort") for p in c.get("ports", [])] != [8080]:
        fail(where, "the container port must be 8080 (the image's EXPOSE)")
    pre = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    pre_s = int(pre[1]) if len(pre) == 2 and pre[0] == "sleep" else 0
    delay = duration_s(env.get("HELLOJOHN_SHUTDOWN_DELAY", "0s"), where)
    drain = duration_s(env.get("HELLOJOHN_DRAIN_TIMEOUT", "30s"), where)
    grace = spec.get("terminationGracePeriodSeconds", 30)
    if grace <= pre_s + delay + drain:
        fail(where, f"terminationGracePeriodSeconds {grace} must exceed preStop {pre_s} + shutdown delay {delay} + drain {drain}")
    if not c.get("resources", {}).get("requests", {}).get("cpu"):
        fail(where, "CPU requests are needed (the HPA's utilization is relative to them)")
    if not spec.get("topologySpreadConstraints"):
        fail(where, "pods should spread over nodes")
for where, doc in docs.get("Job", []):
    check_pod(where, doc["spec"]["template"]["spec"])
for where, doc in docs.get("Service", []):
    # Outside clients reaching the pods through a LoadBalancer or NodePort Service arrive from
    # node addresses (private), which HELLOJOHN_METRICS_ALLOW admits: expose an ingress instead.
    if doc["spec"].get("type", "ClusterIP") != "ClusterIP":
        fail(where, "the Service must be ClusterIP (the ingress is the public entry)")
for kind in ("Service", "PodDisruptionBudget"):
    for where, doc in docs.get(kind, []):
        sel = doc["spec"]["selector"]
        sel = sel.get("matchLabels", sel)
        if not sel or sel.items() - pod_labels.items():
            fail(where, f"the {kind}'s selector does not select the Deployment's pods")
for where, doc in docs.get("HorizontalPodAutoscaler", []):
    if doc["spec"]["scaleTargetRef"]["name"] not in [d["metadata"]["name"] for _, d in docs.get("Deployment", [])]:
        fail(where, "scaleTargetRef names no Deployment")
    if doc["metadata"]["name"] == "hellojohn":
        spec = doc["spec"]
        targets = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"]
                   for m in spec.get("metrics", []) if m.get("type") == "Resource"}
        if (spec.get("minReplicas"), spec.get("maxReplicas"), targets) != (2, 20, {"cpu": 70, "memory": 80}):
            fail(where, "the HPA must be the operator guide's: 2-20 replicas, CPU 70 %, memory 80 %")
for where, doc in docs.get("Kustomization", []):
    for res in doc.get("resources", []):
        if not (REPO / "deploy/kubernetes" / res).exists():
            fail(where, f"resource {res} does not exist")

# ----- Prometheus and Grafana --------------------------------------------------------------

rules = yaml.safe_load(text("deploy/prometheus/rules/hellojohn.rules.yml"))
alerts = set()
for group in rules["groups"]:
    for rule in group["rules"]:
        check_metrics(rule["expr"], f"rules {rule.get('alert') or rule.get('record')}")
        if "alert" in rule:
            alerts.add(rule["alert"])
for needed in ("HelloJohnLatencyP99High", "HelloJohnErrorRateHigh", "HelloJohnDatabasePoolSaturated",
               "HelloJohnHashPoolRefusing", "HelloJohnRedisFallback"):
    if needed not in alerts:
        fail("hellojohn.rules.yml", f"missing alert {needed}")
scrape = yaml.safe_load(text("deploy/prometheus/prometheus.yml"))
for rf in scrape.get("rule_files", []):
    if not (REPO / "deploy/prometheus" / rf).exists():
        fail("prometheus.yml", f"rule file {rf} does not exist")
targets = [t for job in scrape["scrape_configs"] for sc in job.get("static_configs", []) for t in sc["targets"]]
for t in targets:
    if t.split(":")[0] not in services:
        fail("prometheus.yml", f"target {t} is not a compose service")

dash = json.loads(text("deploy/grafana/hellojohn.json"))
ids = [p["id"] for p in dash["panels"]]
if len(ids) != len(set(ids)):
    fail("hellojohn.json", "panel ids repeat")
for p in dash["panels"]:
    if not p.get("targets") or not p.get("gridPos"):
        fail("hellojohn.json", f"panel {p.get('title')} has no query or no position")
    for t in p.get("targets", []):
        check_metrics(t["expr"], f"hellojohn.json {p['title']}")
titles = " ".join(p["title"].lower() for p in dash["panels"])
for word in ("sign-ins", "latency", "hash pool", "database pool", "webhooks"):
    if word not in titles:
        fail("hellojohn.json", f"no panel about {word}")

if problems:
    print("check_deploy.py: the deployment kit does not match the code:", file=sys.stderr)
    for p in problems:
        print("  " + p, file=sys.stderr)
    sys.exit(1)
print(f"check_deploy.py: ok ({len(SETTINGS)} settings, {len(ROUTES)} routes, {len(METRICS)} metric names, "
      f"{sum(len(v) for v in docs.values())} Kubernetes documents, {len(dash['panels'])} panels, {len(alerts)} alerts)")
