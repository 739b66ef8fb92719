#!/usr/bin/env bash
# tally-bench --replication-factor 3 starts its own etcd and three tallyds on loopback,
# produces with acks=all and cleans up (no timing is checked):
# (1) a tiny run with the baselines: the JSON says RF 3, min.insync.replicas 2, all
#     three replicas wrote and fdatasynced the records, the disk baseline ran three
#     writers per partition and reports one copy; afterwards no etcd or tallyd of the
#     run is left and its directory is gone;
# (2) SIGINT in the middle of a run: tally-bench stops its brokers and etcd, exits, and
#     leaves nothing running;
# (3) SIGKILL of tally-bench: the kernel kills its children (PR_SET_PDEATHSIG).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd python3 etcd
bench=$TL_BIN/tally-bench
[ -x "$bench" ] || tl_fail "$bench is missing (make release)"

# Every process of a run has the run's directory under TL_TMP on its command line.
leftovers() {
	pgrep -f -- "$TL_TMP/tally-bench-rf" || true
}

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
	--baseline --baseline-time 300ms --fsync-bytes 64k -q --json "$TL_TMP/rf3.json" \
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
assert abs(d["mb_per_s"] * 3 - d["total_mb_per_s"]) < 1e-6 * max(1, d["total_mb_per_s"]), d
EOF
wait_gone 5 || tl_fail "processes of the RF 3 run are still running after it exited"
! ls -d "$TL_TMP"/tally-bench-rf.* 2>/dev/null || tl_fail "the run's directory was left behind"

tl_log "SIGINT during a run"
"$bench" produce --replication-factor 3 -d 60s -r 500 -s 128 --data-dir "$TL_TMP" \
	>"$TL_TMP/int.out" 2>&1 </dev/null &
pid=$!
deadline=$(($(date +%s) + 15))
until grep -q '^cluster: 127' "$TL_TMP/int.out"; do
	tl_pid_alive "$pid" || { cat "$TL_TMP/int.out" >&2; tl_fail "tally-bench exited before its cluster was up"; }
	[ "$(date +%s)" -lt "$deadline" ] || { cat "$TL_TMP/int.out" >&2; tl_fail "no cluster after 15 s"; }
	sleep 0.1
done
[ "$(leftovers | wc -l)" -eq 4 ] || tl_fail "expected etcd and 3 tallyds, found: $(leftovers | paste -sd' ' -)"
sleep 0.5
kill -INT "$pid"
rc=0
wait "$pid" || rc=$?
[ $rc -ne 0 ] || tl_fail "an interrupted run exited 0"
grep -q 'interrupted' "$TL_TMP/int.out" || { cat "$TL_TMP/int.out" >&2; tl_fail "no 'interrupted' in the output"; }
wait_gone 5 || tl_fail "processes left running after SIGINT"
! ls -d "$TL_TMP"/tally-bench-rf.* 2>/dev/null || tl_fail "the interrupted run's directory was left behind"

tl_log "SIGKILL of tally-bench"
"$bench" produce --replication-factor 3 -d 60s -r 500 -s 128 --data-dir "$TL_TMP" \
	>"$TL_TMP/kill.out" 2>&1 </dev/null &
pid=$!
deadline=$(($(date +%s) + 15))
until grep -q '^cluster: 127' "$TL_TMP/kill.out"; do
	tl_pid_alive "$pid" || { cat "$TL_TMP/kill.out" >&2; tl_fail "tally-bench exited before its cluster was up"; }
	[ "$(date +%s)" -lt "$deadline" ] || { cat "$TL_TMP/kill.out" >&2; tl_fail "no cluster after 15 s"; }
	sleep 0.1
done
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
wait_gone 5 || tl_fail "etcd or tallyd outlived a SIGKILLed tally-bench"
tl_log "ok"
