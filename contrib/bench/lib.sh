# Shared by the contrib/bench scripts: build the binaries, start the fake
# Stash and the SQL-counting proxy, create a database, and measure one
# stashgen process. Source it; do not run it.
#
# Environment:
#   STASHGEN_BENCH_ADMIN_URL  admin URL allowed to CREATE DATABASE
#                             (default postgres://postgres@127.0.0.1:5432/postgres)
#   KEEP=1                    keep the work directory and the database

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
ADMIN_URL=${STASHGEN_BENCH_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/stashgen-bench.XXXXXX")
PIDS=()
DB=""

cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [[ ${KEEP:-0} != 1 ]]; then
		[[ -n $DB ]] && psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
		rm -rf "$WORK"
	else
		echo "kept $WORK and database $DB" >&2
	fi
}
trap cleanup EXIT

need_tools() {
	if [[ ! -x /usr/bin/time ]]; then
		echo "bench: /usr/bin/time (GNU time, for peak RSS) is missing; installing Debian's 'time' package" >&2
		if ! { apt-get install -y time >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y time >/dev/null; }; }; then
			echo "bench: error: could not install it; run: sudo apt-get install time" >&2
			exit 1
		fi
	fi
	local t
	for t in psql python3 curl go; do
		command -v "$t" >/dev/null || { echo "bench: error: $t is required" >&2; exit 1; }
	done
}

build() {
	echo "building stashgen, fakestash and pgcount into $WORK" >&2
	(cd "$ROOT" && go build -o "$WORK/" . ./contrib/bench/fakestash ./contrib/bench/pgcount)
}

# create_db NAME: a fresh, empty database.
create_db() {
	DB=$1
	psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
	psql "$ADMIN_URL" -qc "CREATE DATABASE $DB" >/dev/null
}

db_url() { # URL of $DB on the admin server, through pgcount when $PG_PROXY is set
	python3 - "$ADMIN_URL" "$DB" "${PG_PROXY:-}" <<'EOF'
import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1])
netloc = p.netloc
if sys.argv[3]:
    netloc = netloc.rsplit('@', 1)[0] + '@' + sys.argv[3] if '@' in netloc else sys.argv[3]
q = dict(u.parse_qsl(p.query)); q['sslmode'] = 'disable'
print(u.urlunsplit((p.scheme, netloc, '/' + sys.argv[2], u.urlencode(q), '')))
EOF
}

# wait_line FILE KEY: the value of the first KEY=value line FILE gets.
wait_line() {
	local i v
	for i in $(seq 1 600); do
		v=$(sed -n "s/^$2=//p" "$1" 2>/dev/null | head -1)
		if [[ -n $v ]]; then
			echo "$v"
			return
		fi
		sleep 0.5
	done
	echo "bench: error: no $2= line in $1" >&2
	cat "$1" >&2
	exit 1
}

# start_fake ARGS...: start the fake Stash; sets STASH_URL and DEBUG_URL.
start_fake() {
	echo "starting the fake Stash: $*" >&2
	"$WORK/fakestash" "$@" >"$WORK/fake.out" 2>&1 &
	PIDS+=($!)
	STASH_URL=$(wait_line "$WORK/fake.out" stash_url)
	DEBUG_URL=$(wait_line "$WORK/fake.out" debug_url)
}

# start_pgcount: start the counting proxy; sets PG_PROXY and SQL_LOG.
start_pgcount() {
	SQL_LOG=$WORK/sql.log
	: >"$SQL_LOG"
	local up
	up=$(python3 -c 'import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print("%s:%s" % (p.hostname or "127.0.0.1", p.port or 5432))' "$ADMIN_URL")
	"$WORK/pgcount" -listen 127.0.0.1:0 -upstream "$up" \
		-log "$SQL_LOG" >"$WORK/pgcount.out" 2>&1 &
	PIDS+=($!)
	PG_PROXY=$(wait_line "$WORK/pgcount.out" listening)
}

# write_config POLL_SECONDS CONCURRENCY: the config every script uses. The
# generate toggles are all set, so no run asks Stash for its defaults, and
# a scene has exactly four probed files (preview, webp, sprite, vtt; covers
# and phashes come from is_missing queries). Markers are synced but not
# probed.
write_config() {
	cat >"$WORK/stashgen.toml" <<EOF
lock_file = "$WORK/stashgen.lock"
poll_interval = $1
[stash]
url = "$STASH_URL"
[database]
url = "$(db_url)"
[generate]
covers = true
sprites = true
previews = true
image_previews = true
markers = false
marker_image_previews = false
marker_screenshots = false
phashes = true
transcodes = false
interactive_heatmaps_speeds = false
[check]
concurrency = ${2:-4}
EOF
}

# measure LABEL ARGS...: run one stashgen process and print one result line:
# label, exit code, wall s, user+sys CPU s, peak RSS MB, Stash requests
# (GraphQL + file), SQL statements executed, SQL prepares.
measure() {
	local label=$1
	shift
	curl -fsS -XPOST "$DEBUG_URL/reset" >/dev/null
	: >"$SQL_LOG"
	local rc=0
	/usr/bin/time -f '%e %U %S %M' -o "$WORK/time.txt" \
		"$WORK/stashgen" --config "$WORK/stashgen.toml" "$@" >"$WORK/last.log" 2>&1 || rc=$?
	sleep 0.2 # let pgcount write the last lines
	curl -fsS "$DEBUG_URL/counts" >"$WORK/counts.json"
	python3 - "$label" "$rc" "$WORK/time.txt" "$WORK/counts.json" "$SQL_LOG" <<'EOF'
import json, sys
label, rc, tf, cf, sf = sys.argv[1:]
wall, user, sys_, rss = open(tf).read().split()[-4:]
c = json.load(open(cf))
lines = open(sf).read().splitlines()
stmts = sum(1 for l in lines if l.startswith(('exec\t', 'simple\t')))
prep = sum(1 for l in lines if l.startswith('prepare\t'))
print(f"{label}\t{rc}\t{float(wall):.3f}\t{float(user)+float(sys_):.3f}\t{int(rss)/1024:.1f}\t{c['graphql']}+{c['files']}\t{stmts}\t{prep}")
EOF
}

# summarize: median of each column per label, from result lines on stdin,
# as a Markdown table.
summarize() {
	cat >"$WORK/summarize.py" <<'PY'
import sys, statistics as st
rows, order = {}, []
for line in sys.stdin:
    f = line.rstrip("\n").split("\t")
    if len(f) != 8:
        continue
    if f[0] not in rows:
        order.append(f[0])
        rows[f[0]] = []
    rows[f[0]].append(f)
print("| run | n | exit | wall s, median (min-max) | CPU s, user+sys | peak RSS MB | Stash requests (GraphQL+file) | SQL statements | SQL prepares |")
print("|---|---|---|---|---|---|---|---|---|")
for k in order:
    r = rows[k]
    walls = [float(x[2]) for x in r]
    codes = ",".join(sorted(set(x[1] for x in r)))
    reqs = " / ".join(sorted(set(x[5] for x in r)))
    cpu = st.median([float(x[3]) for x in r])
    rss = st.median([float(x[4]) for x in r])
    sql = st.median([int(x[6]) for x in r])
    prep = st.median([int(x[7]) for x in r])
    print("| %s | %d | %s | %.3f (%.3f-%.3f) | %.3f | %.1f | %s | %g | %g |" % (
        k, len(r), codes, st.median(walls), min(walls), max(walls), cpu, rss, reqs, sql, prep))
PY
	python3 "$WORK/summarize.py"
}

# vacuum: what autovacuum does between hourly runs (it is off on some test
# servers), so measured runs see the tables as a production run would.
vacuum() {
	psql "$(PG_PROXY='' db_url)" -qc 'VACUUM ANALYZE stashgen.scenes' -c 'VACUUM ANALYZE stashgen.markers' >/dev/null
}
