#!/usr/bin/env bash
# First sync and checks, whole process, against the fake Stash on loopback:
#
#   check, first run     `stashgen check` into an empty database: syncs
#                        SCENES scenes and MARKERS markers, then probes every
#                        scene (four files each: 400,000 GETs by default)
#   check --full         re-syncs everything and re-probes every scene
#   check, nothing new   the incremental check when nothing changed
#   once, 10 changed     `once` after 10 scenes were edited in Stash (sync of
#                        10 scenes, 40 probes, nothing to generate)
#
# Wall time, user+sys CPU and peak RSS come from /usr/bin/time; Stash
# requests from the fake's own log; SQL statements from pgcount.
#
#   bash contrib/bench/check.sh           # RUNS=3 SCENES=100000 MARKERS=200000 CONCURRENCY=4
source "$(dirname "$0")/lib.sh"

RUNS=${RUNS:-3}
SCENES=${SCENES:-100000}
MARKERS=${MARKERS:-200000}
CONCURRENCY=${CONCURRENCY:-4}

need_tools
build
create_db stashgen_bench_check
start_fake -scenes "$SCENES" -markers "$MARKERS" -generated
start_pgcount
write_config 30 "$CONCURRENCY"

results=$WORK/results.txt
: >"$results"
for i in $(seq "$RUNS"); do
	echo "round $i of $RUNS" >&2
	psql "$(PG_PROXY='' db_url)" -qc 'DROP SCHEMA IF EXISTS stashgen CASCADE' >/dev/null
	measure "check, first run (empty database)" check | tee -a "$results" >&2
	grep -q 'outcome=checked' "$WORK/last.log" || { cat "$WORK/last.log" >&2; exit 1; }
	grep 'scenes synced' "$WORK/last.log" >&2 || true
	measure "check --full" check --full | tee -a "$results" >&2
	grep -q 'outcome=checked' "$WORK/last.log" || { cat "$WORK/last.log" >&2; exit 1; }
	vacuum
	measure "check, nothing changed" check | tee -a "$results" >&2
	curl -fsS -XPOST "$DEBUG_URL/touch?n=10" >/dev/null
	sleep 2 # the fake's clock moves past the edits, as Stash's does
	measure "once, 10 scenes changed" once | tee -a "$results" >&2
	grep -q 'outcome=nothing_to_do' "$WORK/last.log" || { cat "$WORK/last.log" >&2; exit 1; }
done

echo
echo "checks: $SCENES scenes (4 probed files each), $MARKERS markers, concurrency $CONCURRENCY; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(go version | cut -d' ' -f3)"
summarize <"$results"
