#!/usr/bin/env bash
# Lighthouse's accessibility score of each main view of the web UI (issue 11: ≥ 90 on each),
# against Debian's Chromium, on a fresh `updraft standalone` with the example DAGs.
#
#   bench/lighthouse.sh                        # target/release/updraft, reports in bench/lighthouse/
#   UPDRAFT=path/to/updraft OUT=/tmp/lh bench/lighthouse.sh
#
# Lighthouse comes from the npm registry (Node.js ≥ 18), installed on first use into
# $LIGHTHOUSE_DIR (default ~/.cache/updraft-lighthouse, outside the repository). It logs in as
# the standalone's `admin` (POST /auth/login) and passes the `_token` cookie to every view with
# --extra-headers; one run `lighthouse` of hello_world is made first so that the run, task,
# Gantt pages have something to show. Prints a Markdown table of the scores and, per view,
# the audits that failed; the JSON reports stay in $OUT.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
UPDRAFT=${UPDRAFT:-$root/target/release/updraft}
OUT=${OUT:-$root/bench/lighthouse}
LIGHTHOUSE_DIR=${LIGHTHOUSE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/updraft-lighthouse}
LIGHTHOUSE_VERSION=${LIGHTHOUSE_VERSION:-12.8.2}
export CHROME_PATH=${CHROME_PATH:-/usr/bin/chromium}

[ -x "$UPDRAFT" ] || { echo "no updraft binary at $UPDRAFT (cargo build --release -p updraft)" >&2; exit 1; }
[ -x "$CHROME_PATH" ] || { echo "no Chromium at $CHROME_PATH (Debian package chromium)" >&2; exit 1; }
lighthouse=$LIGHTHOUSE_DIR/node_modules/.bin/lighthouse
if [ ! -x "$lighthouse" ]; then
  echo "installing lighthouse@$LIGHTHOUSE_VERSION into $LIGHTHOUSE_DIR" >&2
  mkdir -p "$LIGHTHOUSE_DIR"
  npm install --prefix "$LIGHTHOUSE_DIR" --no-audit --no-fund --loglevel=error \
    "lighthouse@$LIGHTHOUSE_VERSION" >&2
fi
mkdir -p "$OUT"

UPDRAFT_HOME=$(mktemp -d -t updraft-lighthouse.XXXXXX)
export UPDRAFT_HOME
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
"$UPDRAFT" standalone --host 127.0.0.1 --port "$port" --dags-folder "$root/examples/dags" \
  >"$UPDRAFT_HOME/standalone.log" 2>&1 &
standalone=$!
cleanup() {
  kill "$standalone" 2>/dev/null && wait "$standalone" 2>/dev/null
  rm -rf "$UPDRAFT_HOME"
}
trap cleanup EXIT

for _ in $(seq 600); do
  curl -sf "$base/api/v2/monitor/health" >/dev/null 2>&1 && \
    [ -s "$UPDRAFT_HOME/standalone_admin_password.txt" ] && break
  sleep 0.1
done
password=$(cat "$UPDRAFT_HOME/standalone_admin_password.txt")
jar=$UPDRAFT_HOME/cookies.txt
status=$(curl -s -o /dev/null -w '%{http_code}' -c "$jar" -H 'Content-Type: application/json' \
  -d "{\"username\": \"admin\", \"password\": \"$password\"}" "$base/auth/login")
[ "$status" = 204 ] || { echo "POST /auth/login answered $status" >&2; exit 1; }
token=$(awk '$6 == "_token" { print $7 }' "$jar")
[ -n "$token" ] || { echo "no _token cookie after logging in" >&2; exit 1; }

dags=(--dags-folder "$root/examples/dags")
"$UPDRAFT" dags trigger hello_world "${dags[@]}" -r lighthouse --wait >/dev/null || true
"$UPDRAFT" variables set lighthouse_example '{"a": 1}' >/dev/null 2>&1 || true

run=/dags/hello_world/runs/lighthouse
views=(
  "home /"
  "dags /dags"
  "grid /dags/hello_world"
  "graph /dags/hello_world/graph"
  "gantt /dags/hello_world/gantt?run_id=lighthouse"
  "code /dags/hello_world/code"
  "details /dags/hello_world/details"
  "trigger /dags/hello_world/trigger"
  "run $run"
  "task $run/tasks/compute"
  "cluster /cluster"
  "variables /admin/variables"
  "connections /admin/connections"
  "pools /admin/pools"
  "users /admin/users"
  "login /login"
)

echo "| view | path | accessibility | failed audits |"
echo "|---|---|---:|---|"
for entry in "${views[@]}"; do
  name=${entry%% *}
  path=${entry#* }
  headers="{\"Cookie\": \"_token=$token\"}"
  [ "$name" = login ] && headers='{}'
  report=$OUT/$name.json
  if ! "$lighthouse" "$base$path" --only-categories=accessibility --output=json \
      --output-path="$report" --quiet --extra-headers="$headers" \
      --chrome-flags="--headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage" \
      >"$OUT/$name.log" 2>&1; then
    echo "| $name | \`$path\` | error | see $OUT/$name.log |"
    continue
  fi
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const cat = r.categories.accessibility;
    const failed = cat.auditRefs
      .map((a) => r.audits[a.id])
      .filter((a) => a && a.scoreDisplayMode === "binary" && a.score === 0)
      .map((a) => `${a.id} (${(a.details && a.details.items || []).length})`);
    const landed = r.finalDisplayedUrl || r.finalUrl;
    const moved = landed !== process.argv[3] ? ` (landed on ${landed})` : "";
    console.log(`| ${process.argv[2]} | \`${process.argv[4]}\` | ${Math.round(cat.score * 100)}${moved} | ${failed.join(", ") || "none"} |`);
  ' "$report" "$name" "$base$path" "$path"
done
