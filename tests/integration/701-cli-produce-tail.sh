#!/usr/bin/env bash
# tally produce / tally tail (acceptance 1): `seq 1 100000 | tally produce t` and
# `tally tail t -o beginning -e | wc -l` give 100000 lines, in send order within each
# partition; a topic copied with `tally tail --json | tally produce --json` keeps keys,
# headers (binary ones too), timestamps and partitions; -K key delimiter, -k, -H, zstd,
# --acks 1, a custom format, and hex/base64/escape output of binary values.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
[ -x "$TL_BIN/tally" ] || tl_fail "$TL_BIN/tally is missing (make release)"
tally() { "$TL_BIN/tally" -b "$TL_BROKER" --timeout 10s "$@"; }

# Records stamped in 2017 and 2024 below: past the default retention.ms, which now
# deletes a wholly expired log, its active segment too (as Kafka).
tl_start_broker --override num.partitions=3 --override log.retention.ms=-1

tl_log "100000 lines through produce, back through tail -e"
seq 1 100000 | tally produce t
n=$(tally tail t -o beginning -e | wc -l)
[ "$n" = 100000 ] || tl_fail "tail -o beginning -e printed $n lines, want 100000"
# In order per partition, each value exactly once.
tally tail t -o beginning -e -f '%p %v\n' >"$TL_TMP/pv"
awk '{ if (($1 in last) && $2 <= last[$1]) { print "partition " $1 ": " $2 " after " last[$1]; bad = 1 }
       last[$1] = $2 } END { exit bad }' "$TL_TMP/pv" || tl_fail "values out of order within a partition"
[ "$(cut -d' ' -f2 "$TL_TMP/pv" | sort -n | uniq | wc -l)" = 100000 ] || tl_fail "values missing or duplicated"
[ "$(cut -d' ' -f1 "$TL_TMP/pv" | sort -u | wc -l)" -ge 2 ] || tl_fail "all records in one partition"

tl_log "keys, headers, timestamps survive a --json copy"
printf 'k1\tv1\nk2\tv2\n\tno-key-before-tab\nplain\n' | tally produce src -K $'\t' -H h1=a -H h2=
printf '{"key":"bin","value_b64":"AP8BAg==","headers":[{"key":"raw","value_b64":"/wA="},{"key":"nul","value":null}],"timestamp":1500000000123,"partition":1}\n' |
	tally produce src --json
printf '{"key":null,"value":"ts","timestamp":"2024-05-01T12:00:00.5Z"}\n' | tally produce src --json -z zstd
tally tail src -o beginning -e --json >"$TL_TMP/src.json"
[ "$(wc -l <"$TL_TMP/src.json")" = 6 ] || tl_fail "src holds $(wc -l <"$TL_TMP/src.json") records, want 6"
grep -q '"key":"k1","value":"v1","headers":\[{"key":"h1","value":"a"},{"key":"h2","value":""}\]' "$TL_TMP/src.json" ||
	tl_fail "-K/-H record wrong: $(cat "$TL_TMP/src.json")"
grep -q '"key":"","value":"no-key-before-tab"' "$TL_TMP/src.json" || tl_fail "empty key before the delimiter lost"
grep -q '"key":null,"value":"plain"' "$TL_TMP/src.json" || tl_fail "a line without the delimiter must have a null key"
grep -q '"partition":1,.*"timestamp":1500000000123,"key":"bin","value_b64":"AP8BAg==","headers":\[{"key":"raw","value_b64":"/wA="},{"key":"nul","value":null}\]' "$TL_TMP/src.json" ||
	tl_fail "binary record wrong: $(grep bin "$TL_TMP/src.json")"
grep -q '"timestamp":1714564800500,"key":null,"value":"ts"' "$TL_TMP/src.json" || tl_fail "RFC 3339 timestamp not applied"
tally tail src -o beginning -e --json | tally produce copy --json
tally tail copy -o beginning -e --json >"$TL_TMP/copy.json"
strip() { sed -E 's/"topic":"[^"]*",//; s/,"producer_id":[0-9]+,"producer_epoch":[0-9]+,"sequence":[0-9]+//' "$1" | sort; }
diff <(strip "$TL_TMP/src.json") <(strip "$TL_TMP/copy.json") >&2 || tl_fail "the --json copy differs from its source"

tl_log "-k, --acks 1, format verbs, encodings"
printf 'a\nb\n' | tally produce fixed -k K1 --acks 1 -p 2
got=$(tally tail fixed -o beginning -e -f '%t|%p|%o|%k|%v|%K|%V|%h\n')
[ "$got" = $'fixed|2|0|K1|a|2|1|\nfixed|2|1|K1|b|2|1|' ] || tl_fail "format output: $got"
printf '\x01\xfe\\x\n' | tally produce bin
[ "$(tally tail bin -o 0:end -E hex)" = 01fe5c78 ] || tl_fail "hex: $(tally tail bin -o 0:end -E hex)"
[ "$(tally tail bin -o 0:end -E base64)" = Af5ceA== ] || tl_fail "base64"
[ "$(tally tail bin -o 0:end -E escape)" = '\x01\xfe\\x' ] || tl_fail "escape: $(tally tail bin -o 0:end -E escape)"
tally tail bin -o 0:end -f '%Z' 2>"$TL_TMP/err" && tl_fail "an unknown format verb was accepted"
grep -q 'unknown format verb %Z' "$TL_TMP/err" || tl_fail "bad verb message: $(cat "$TL_TMP/err")"
tl_stop_broker
tl_log "ok"
