#!/usr/bin/env bash
# Checks the deployment kit offline (no container engine, no cluster):
#   * scripts/check_deploy.py: every file against the code (settings, routes, metrics, commands,
#     COPY sources, grace periods, selectors, Secret keys);
#   * yamllint on deploy/;
#   * promtool check config/rules on deploy/prometheus;
#   * the Kubernetes manifests against the API's schemas (kubernetes-validate, from PyPI into a
#     venv under .hj-test on first use; --strict: an unknown field fails);
#   * nginx -t on deploy/compose/nginx.conf (the instances' names replaced by loopback).
# Needs Debian's python3-yaml, yamllint, prometheus (promtool) and nginx
# (`bash scripts/services.sh install-deps` installs them), and PyPI for kubernetes-validate the
# first time. scripts/test.sh runs it.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
for tool in yamllint promtool; do
    command -v "$tool" >/dev/null || { echo "check-deploy.sh: $tool is missing (bash scripts/services.sh install-deps)" >&2; exit 2; }
done
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
[[ -x "$NGINX" ]] || { echo "check-deploy.sh: nginx is missing (bash scripts/services.sh install-deps)" >&2; exit 2; }

# Debian's interpreter and its python3-yaml, whatever python3 is first on PATH.
/usr/bin/python3 scripts/check_deploy.py "$REPO"

yamllint --strict \
    -d '{extends: default, rules: {line-length: disable, document-start: disable, truthy: {check-keys: false}}}' deploy

promtool check config deploy/prometheus/prometheus.yml
promtool check rules deploy/prometheus/rules/hellojohn.rules.yml

# The Kubernetes API's OpenAPI schemas, bundled in a pinned PyPI package (no cluster needed).
VENV="${HJ_TEST_DIR:-$REPO/.hj-test}/venv-deploy"
KV_VERSION=1.37.0
if [[ ! -x "$VENV/bin/kubernetes-validate" ]] || ! "$VENV/bin/kubernetes-validate" --version 2>/dev/null | grep -q "$KV_VERSION"; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==$KV_VERSION"
fi
# (kustomization.yaml is kustomize's own file, not an API resource.)
manifests=()
for f in deploy/kubernetes/*.yaml; do [[ "$f" == */kustomization.yaml ]] || manifests+=("$f"); done
for k8s in 1.31.0 1.35.0; do
    "$VENV/bin/kubernetes-validate" -k "$k8s" --strict --quiet "${manifests[@]}"
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
sed -E 's/hj-instance-[0-9]+:8080/127.0.0.1:8080/' deploy/compose/nginx.conf >"$tmp/site.conf"
cat >"$tmp/nginx.conf" <<NGINX
pid $tmp/nginx.pid;
error_log stderr;
events {}
http {
    access_log off;
    client_body_temp_path $tmp/body;
    proxy_temp_path $tmp/proxy;
    fastcgi_temp_path $tmp/fastcgi;
    uwsgi_temp_path $tmp/uwsgi;
    scgi_temp_path $tmp/scgi;
    include $tmp/site.conf;
}
NGINX
"$NGINX" -t -q -p "$tmp" -c "$tmp/nginx.conf" -e stderr
echo "check-deploy.sh: ok"
