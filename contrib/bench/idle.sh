#!/usr/bin/env bash
# Idle runs, whole process: what `stashgen once` costs when Stash is busy
# and when nothing is pending (a library of SCENES scenes, all generated,
# nothing changed since the last run).
#
# It builds stashgen and the fake Stash, creates a database, primes it with
# one real run (sync and check of the whole library), then measures RUNS
# runs of each kind with /usr/bin/time: wall time, user+sys CPU, peak RSS,
# Stash HTTP requests (the fake's own log) and SQL statements (pgcount, a
# proxy that reads the wire protocol).
#
#   bash contrib/bench/idle.sh            # RUNS=7 SCENES=100000 MARKERS=200000
source "$(dirname "$0")/lib.sh"

RUNS=${RUNS:-7}
SCENES=${SCENES:-100000}
MARKERS=${MARKERS:-200000}

need_tools
build
create_db stashgen_bench_idle
start_fake -scenes "$SCENES" -markers "$MARKERS" -generated
start_pgcount
write_config 30 4

echo "priming: one run syncs and checks $SCENES scenes ($MARKERS markers)" >&2
measure prime once | tee "$WORK/prime.txt" >&2
grep -q 'outcome=nothing_to_do' "$WORK/last.log" || { echo "bench: error: the priming run did not end nothing_to_do" >&2; cat "$WORK/last.log" >&2; exit 1; }
vacuum

results=$WORK/results.txt
: >"$results"
echo "measuring $RUNS idle runs (nothing pending)" >&2
for _ in $(seq "$RUNS"); do
	measure "once, nothing pending" once | tee -a "$results" >&2
	grep -q 'outcome=nothing_to_do' "$WORK/last.log" || { echo "bench: error: expected nothing_to_do" >&2; cat "$WORK/last.log" >&2; exit 1; }
	cp "$SQL_LOG" "$WORK/sql-idle.log"
done

echo "measuring $RUNS runs while Stash is busy (a scan is running)" >&2
curl -fsS -XPOST "$DEBUG_URL/scan" >/dev/null
for _ in $(seq "$RUNS"); do
	measure "once, Stash busy" once | tee -a "$results" >&2
	grep -q 'outcome=skipped_busy' "$WORK/last.log" || { echo "bench: error: expected skipped_busy" >&2; cat "$WORK/last.log" >&2; exit 1; }
	cp "$SQL_LOG" "$WORK/sql-busy.log"
done
curl -fsS -XPOST "$DEBUG_URL/drain" >/dev/null

echo "measuring $RUNS runs of \`stashgen version\` (process start, no I/O)" >&2
for _ in $(seq "$RUNS"); do
	measure "version (baseline)" version >>"$results"
done

echo
echo "idle runs: $SCENES scenes, $MARKERS markers; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores, $(go version | cut -d' ' -f3)"
summarize <"$results"
echo
for kind in idle busy; do
	echo "SQL statements of the last $kind run (pgcount):"
	grep -v '^prepare' "$WORK/sql-$kind.log" | cut -c1-110 | sed 's/^/    /'
done
