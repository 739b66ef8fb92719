#!/usr/bin/env bash
# tally group (acceptance 4): after a group consumed part of a 3-partition topic,
# `tally group describe` shows per partition the committed offset, the end offset and a
# lag equal to end - committed (checked against tally topic describe's end offsets and
# the consumer's own count), in text and JSON; list shows the group; seek is a dry run
# unless --execute, and moves the offsets (beginning, -N, @TIME, --shift); delete
# removes it; an unknown group exits 3.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
[ -x "$TL_BIN/tally" ] || tl_fail "$TL_BIN/tally is missing (make release)"
tally() { "$TL_BIN/tally" -b "$TL_BROKER" --timeout 10s "$@"; }
command -v python3 >/dev/null || tl_skip "python3 is not installed"

tl_start_broker --override group.initial.rebalance.delay.ms=0
tally topic create lagged -p 3
seq 1 3000 | awk '{ print "key" ($1 % 17) "\t" $1 }' | tally produce lagged -K $'\t'
tally tail lagged -g lag-group -o beginning -n 1000 >/dev/null
echo more | tally produce lagged -p 1

tally group list | grep -q '^lag-group' || tl_fail "group list lacks lag-group: $(tally group list)"
tally group describe lag-group --format json >"$TL_TMP/g.json"
tally topic describe lagged --format json >"$TL_TMP/t.json"
python3 - "$TL_TMP/g.json" "$TL_TMP/t.json" <<'PY' || tl_fail "lag does not match end - committed"
import json, sys
g = json.load(open(sys.argv[1]))
t = json.load(open(sys.argv[2]))[0]
end = {p["partition"]: p["end_offset"] for p in t["partitions"]}
rows = {o["partition"]: o for o in g["offsets"] if o["topic"] == "lagged"}
assert sorted(rows) == [0, 1, 2], rows
committed = 0
for p, o in rows.items():
    assert o["end"] == end[p], (p, o, end[p])
    assert o["lag"] == end[p] - o["committed"], (p, o)
    committed += o["committed"]
assert committed == 1000, committed
assert g["total_lag"] == sum(end.values()) - 1000, g["total_lag"]
assert g["state"] in ("Empty", "Dead"), g["state"]
PY
# The text table says the same.
tally group describe lag-group >"$TL_TMP/g.txt"
awk '$1 == "lagged" { if ($5 != $4 - $3) bad = 1; n++ } END { exit bad || n != 3 }' "$TL_TMP/g.txt" ||
	tl_fail "text lag column wrong: $(cat "$TL_TMP/g.txt")"

tl_log "seek: dry run, then --execute"
before=$(tally group describe lag-group --format json)
tally group seek lag-group -o beginning >"$TL_TMP/plan" 2>"$TL_TMP/plan.err"
grep -q 'dry run' "$TL_TMP/plan.err" || tl_fail "seek without --execute did not say dry run"
[ "$(tally group describe lag-group --format json)" = "$before" ] || tl_fail "a dry run changed the group"
tally group seek lag-group -o beginning --execute >/dev/null
tally group describe lag-group --format json | python3 -c '
import json, sys
g = json.load(sys.stdin)
assert all(o["committed"] == 0 for o in g["offsets"]), g' || tl_fail "seek to beginning did not move the offsets"
tally group seek lag-group -o -5 -t lagged:1 --execute >/dev/null
lag_of() # partition -> its lag
{
	tally group describe lag-group --format json | python3 -c '
import json, sys
g = json.load(sys.stdin)
print([o["lag"] for o in g["offsets"] if o["partition"] == int(sys.argv[1])][0])' "$1"
}
[ "$(lag_of 1)" = 5 ] || tl_fail "after seek -o -5 on partition 1 its lag is $(lag_of 1), want 5"
[ "$(lag_of 0)" -gt 5 ] || tl_fail "seek -t lagged:1 moved partition 0 too"
tally group seek lag-group --shift 2 -t lagged:1 --execute >/dev/null
[ "$(lag_of 1)" = 3 ] || tl_fail "after --shift 2 partition 1's lag is $(lag_of 1), want 3"
tally group seek lag-group -o @-1h -t lagged --execute >/dev/null
n=$(tally tail lagged -g lag-group -e | wc -l)
[ "$n" = 3001 ] || tl_fail "the group read $n records after seeking to @-1h, want 3001"
tally group describe lag-group --format json | python3 -c '
import json, sys
g = json.load(sys.stdin)
assert g["total_lag"] == 0, g' || tl_fail "after reading to the end the lag is not 0"

tl_log "delete, unknown groups"
tally group delete lag-group 2>/dev/null
rc=0
tally group describe lag-group 2>"$TL_TMP/err" || rc=$?
[ $rc = 3 ] || tl_fail "describe of a deleted group exited $rc, want 3"
grep -q 'does not exist' "$TL_TMP/err" || tl_fail "message: $(cat "$TL_TMP/err")"
rc=0
tally group delete nope 2>/dev/null || rc=$?
[ $rc = 3 ] || tl_fail "delete of an unknown group exited $rc, want 3"
tl_stop_broker
tl_log "ok"
