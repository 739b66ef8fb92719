#!/usr/bin/env bash
# The chaos checker (tests/chaos/check.py) can fail: tests/chaos/plant.py writes a
# recorded-style history of a clean run (idempotent producers, a transactional writer
# with an aborted transaction, a read_committed reader, offset commits, a broker kill)
# and then the same history with one planted anomaly each. The clean one must be
# VALID; each planted one must fail exactly the property it breaks, and the JSON and
# HTML reports must be written. Duplicates are told apart by the stored batches'
# producer sessions (docs/reliability.md finding 10): a copy in the same producer id
# and epoch, a copy written after the acknowledged one, or any second copy of a
# transaction's value, is a duplicate; a copy re-sent under a later epoch and
# acknowledged there (librdkafka's re-send after an epoch bump) is only a NOTE, except
# for a writer that re-sends only the identical batch (retry "identical", raw_resend):
# any second copy of its value is a duplicate. A transactional copier's output must
# hold each input record below its committed offsets exactly once (copy-once): a
# skipped record, a doubled one and one not in the input are each reported. A group must
# not commit past a record none of its members read (group-skip).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
tl_require_cmd python3
chaos=$TL_ROOT/tests/chaos
# The system interpreter when there is one: a pyenv shim costs seconds per start.
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3

"$py" "$chaos/plant.py" "$TL_TMP/clean"
"$py" "$chaos/check.py" --json "$TL_TMP/clean.json" --html "$TL_TMP/clean.html" \
	"$TL_TMP"/clean/*.jsonl >"$TL_TMP/clean.out" || {
	cat "$TL_TMP/clean.out" >&2
	tl_fail "the clean history was judged invalid"
}
cat "$TL_TMP/clean.out" >&2
grep -q '^VALID' "$TL_TMP/clean.out" || tl_fail "no VALID verdict for the clean history"
grep -q '"valid": true' "$TL_TMP/clean.json" || tl_fail "the JSON report does not say valid"
grep -q '<svg' "$TL_TMP/clean.html" || tl_fail "the HTML report has no SVG timeline"
grep -q 'kill -9 broker 2' "$TL_TMP/clean.html" || tl_fail "the timeline does not show the fault"

# anomaly:property it must fail
for pair in lost:lost misplaced:lost duplicate:duplicate dup-same-epoch:duplicate \
	resent-acked:duplicate resent-txn:duplicate reorder:reorder \
	never-sent:never-sent failed-read:never-sent aborted-read:aborted-read \
	non-atomic:non-atomic offsets-back:offsets-back group-skip:group-skip resent-identical:duplicate \
	copy-skipped:copy-once copy-doubled:copy-once copy-phantom:copy-once; do
	anomaly=${pair%%:*} prop=${pair#*:}
	"$py" "$chaos/plant.py" "$TL_TMP/$anomaly" "$anomaly"
	rc=0
	"$py" "$chaos/check.py" --json "$TL_TMP/$anomaly.json" "$TL_TMP/$anomaly"/*.jsonl \
		>"$TL_TMP/$anomaly.out" || rc=$?
	[ $rc -eq 1 ] || { cat "$TL_TMP/$anomaly.out" >&2; tl_fail "$anomaly: exit $rc, want 1"; }
	grep -q "^FAIL $prop " "$TL_TMP/$anomaly.out" || {
		cat "$TL_TMP/$anomaly.out" >&2
		tl_fail "planted $anomaly was not reported as $prop"
	}
	grep -q "^INVALID" "$TL_TMP/$anomaly.out" || tl_fail "$anomaly: no INVALID verdict"
	tl_log "planted $anomaly: $(grep "^FAIL $prop " "$TL_TMP/$anomaly.out" | cut -c1-150)"
done
# A re-send under a bumped epoch, acknowledged at its last copy: VALID, with a NOTE.
"$py" "$chaos/plant.py" "$TL_TMP/resent" resent
rc=0
"$py" "$chaos/check.py" --json "$TL_TMP/resent.json" "$TL_TMP/resent"/*.jsonl \
	>"$TL_TMP/resent.out" || rc=$?
[ $rc -eq 0 ] && grep -q '^VALID' "$TL_TMP/resent.out" || {
	cat "$TL_TMP/resent.out" >&2
	tl_fail "resent: exit $rc, want 0 and VALID (a re-send across epochs is no broker fault)"
}
grep -q '^NOTE resent  *1 ' "$TL_TMP/resent.out" || {
	cat "$TL_TMP/resent.out" >&2
	tl_fail "resent: no NOTE line for the re-sent copy"
}
tl_log "planted resent: $(grep '^NOTE resent' "$TL_TMP/resent.out" | cut -c1-150)"
tl_log "ok"
