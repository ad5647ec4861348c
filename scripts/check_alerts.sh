#!/usr/bin/env bash
# Check the Prometheus files under deploy/prometheus with promtool: the syntax of alerts.yml, its
# unit tests in alerts_test.yml, and prometheus.yml together with the rule files it names. Then
# check that the queries of the Grafana dashboards in deploy/grafana/dashboards parse as PromQL.
# Exits nonzero when promtool or python3 is missing or a check fails.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prometheus_dir="$repo_root/deploy/prometheus"
dashboards_dir="$repo_root/deploy/grafana/dashboards"

log() {
    echo "check_alerts: $*" >&2
}

if ! command -v promtool >/dev/null; then
    log "promtool not found. Install Prometheus (Debian or Ubuntu: apt-get install prometheus;"
    log "macOS: brew install prometheus) or put its promtool on PATH."
    exit 1
fi
if ! command -v python3 >/dev/null; then
    log "python3 not found. It reads the dashboard queries (Debian or Ubuntu: apt-get install python3)."
    exit 1
fi

# Write the PromQL queries of the dashboards as recording rules, one rule per query, so that
# `promtool check rules` parses them. Grafana variables such as $__rate_interval are not PromQL,
# so a dashboard that uses them fails here.
check_dashboard_queries() {
    local tmp_dir status=0
    tmp_dir=$(mktemp -d "${TMPDIR:-/tmp}/duespark-check-alerts.XXXXXX")
    python3 - "$dashboards_dir" >"$tmp_dir/rules.yml" 2>"$tmp_dir/queries.txt" <<'PY' || status=1
import json, pathlib, sys

rules = []
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.json")):
    dashboard = json.loads(path.read_text())
    # A collapsed row keeps its panels inside the row panel.
    panels = dashboard.get("panels", [])
    panels += [inner for panel in panels for inner in panel.get("panels", [])]
    for panel in panels:
        for target in panel.get("targets", []):
            if "expr" in target:
                name = f"dashboard_query_{len(rules)}"
                rules.append({"record": name, "expr": target["expr"]})
                print(f"{name} is {path.name}, panel {panel.get('title')!r}, query {target.get('refId')}",
                      file=sys.stderr)
if not rules:
    sys.exit(f"no dashboard queries found in {sys.argv[1]}")
# JSON is valid YAML, so promtool reads this as a rule file.
print(json.dumps({"groups": [{"name": "dashboard-queries", "rules": rules}]}))
PY
    if ((status == 0)) && ! promtool check rules "$tmp_dir/rules.yml"; then
        status=1
    fi
    if ((status != 0)); then
        sed 's/^/check_alerts: /' "$tmp_dir/queries.txt" >&2
    fi
    rm -rf "$tmp_dir"
    return "$status"
}

# promtool resolves relative rule_files against the directory of the file that names them, so
# these commands work from any directory.
status=0
promtool check rules "$prometheus_dir/alerts.yml" || status=1
promtool test rules "$prometheus_dir/alerts_test.yml" || status=1
promtool check config "$prometheus_dir/prometheus.yml" || status=1
check_dashboard_queries || status=1

if ((status != 0)); then
    log "failed; see the output above"
    exit 1
fi
echo "check_alerts: ok ($(promtool --version 2>&1 | head -n 1))"
