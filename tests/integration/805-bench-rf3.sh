#!/usr/bin/env bash
# tally-bench --replication-factor 3 starts its own etcd and three tallyds on loopback,
# produces with acks=all and cleans up (no timing is checked):
# (1) a tiny run with the baselines: the JSON says RF 3, min.insync.replicas 2, all
#     three replicas wrote and fdatasynced the records, the disk baseline ran three
#     writers per partition and reports one copy; afterwards no etcd or tallyd of the
#     run is left and its directory is gone;
# (2) SIGINT in the middle of a run: tally-bench stops its brokers and etcd, exits, and
#     leaves nothing running; (3) SIGKILL of tally-bench (another run, at the same
#     time): the kernel kills its children (PR_SET_PDEATHSIG).
# The disk baseline runs with the built-in writer here (fio's start-up costs a second;
# the fio path of the same N-writer figure is what bench/rf.sh runs).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd python3 etcd
bench=$TL_BIN/tally-bench
[ -x "$bench" ] || tl_fail "$bench is missing (make release)"

# Every process of a run has the run's directory under TL_TMP on its command line.
leftovers() {
	pgrep -f -- "$TL_TMP/(int/|kill/)?tally-bench-rf" || true
}
# As tests/cluster.sh: a follower whose first fetch came too early retries sooner.
fast=(--broker-arg replica.fetch.backoff.ms=200)

wait_gone() { # SECONDS
	local deadline=$(($(date +%s) + $1))
	while [ -n "$(leftovers)" ]; do
		[ "$(date +%s)" -lt "$deadline" ] || {
			ps -o pid,args -p "$(leftovers | paste -sd, -)" >&2 || true
			return 1
		}
		sleep 0.1
	done
}

tl_log "RF 3, 2000 records, with the baselines"
timeout 60 "$bench" produce --replication-factor 3 -n 2000 -s 256 -w 0 --data-dir "$TL_TMP" \
	"${fast[@]}" --baseline --baseline-engine builtin --baseline-time 300ms --fsync-bytes 64k \
	-q --json "$TL_TMP/rf3.json" \
	>"$TL_TMP/rf3.out" 2>&1 || { cat "$TL_TMP/rf3.out" >&2; tl_fail "tally-bench --replication-factor 3 failed"; }
python3 - "$TL_TMP/rf3.json" <<'EOF' || { cat "$TL_TMP/rf3.out" >&2; tl_fail "the RF 3 report is not what ran"; }
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["ok"] is True, doc.get("error")
c = doc["config"]
assert c["replication_factor"] == 3 and c["min_insync_replicas"] == 2 and c["acks"] == "all", c
p = doc["produce"]
assert p["total_records"] == 2000 and p["errors"] == 0, p
r = doc["replication"]
assert r["brokers"] == 3 and 1 <= r["leader"] <= 3, r
for rep in r["replicas"]:
    assert rep["fdatasyncs"] > 0 and rep["bytes_per_fdatasync"] > 0, rep
d = doc["baseline"]["disk"]
assert d["ok"] and d["copies"] == 3 and d["jobs"] == 3, d
assert abs(d["mb_per_s"] * 3 - d["total_mb_per_s"]) < 1e-3 * max(1, d["total_mb_per_s"]), d  # JSON keeps 6 digits
EOF
wait_gone 5 || tl_fail "processes of the RF 3 run are still running after it exited"
! ls -d "$TL_TMP"/tally-bench-rf.* 2>/dev/null || tl_fail "the run's directory was left behind"

# Both at once (a cluster takes seconds to start on this machine): one is interrupted,
# the other killed.
tl_log "SIGINT during one run, SIGKILL of another"
start_run() { # NAME: a 60 s run in the background, its output in TL_TMP/NAME.out
	"$bench" produce --replication-factor 3 -d 60s -r 500 -s 128 --data-dir "$TL_TMP/$1" \
		"${fast[@]}" >"$TL_TMP/$1.out" 2>&1 </dev/null &
}
start_run int
int_pid=$!
start_run kill
kill_pid=$!
disown "$kill_pid" # no "Killed" line from the shell
deadline=$(($(date +%s) + 15))
until grep -q '^cluster: 127' "$TL_TMP/int.out" && grep -q '^cluster: 127' "$TL_TMP/kill.out"; do
	if ! tl_pid_alive "$int_pid" || ! tl_pid_alive "$kill_pid"; then
		cat "$TL_TMP/int.out" "$TL_TMP/kill.out" >&2
		tl_fail "tally-bench exited before its cluster was up"
	fi
	[ "$(date +%s)" -lt "$deadline" ] || { cat "$TL_TMP/int.out" "$TL_TMP/kill.out" >&2; tl_fail "no clusters after 15 s"; }
	sleep 0.1
done
[ "$(leftovers | wc -l)" -eq 8 ] || tl_fail "expected 2 x (etcd and 3 tallyds), found: $(leftovers | paste -sd' ' -)"
kill -INT "$int_pid"
kill -9 "$kill_pid"
rc=0
wait "$int_pid" || rc=$?
while tl_pid_alive "$kill_pid"; do sleep 0.05; done
[ $rc -ne 0 ] || tl_fail "an interrupted run exited 0"
grep -q 'interrupted' "$TL_TMP/int.out" || { cat "$TL_TMP/int.out" >&2; tl_fail "no 'interrupted' in the output"; }
wait_gone 5 || tl_fail "etcd or tallyd left running after SIGINT or SIGKILL of tally-bench"
! ls -d "$TL_TMP"/int/tally-bench-rf.* 2>/dev/null || tl_fail "the interrupted run's directory was left behind"
tl_log "ok"
