#!/usr/bin/env bash
# tally on a terminal (tmux): aligned tables with a bold header, red "error" unless
# NO_COLOR is set or --color never, a progress bar with ETA for a bounded read (0:end)
# whose stdout is redirected, a live rate line while following, and produce's summary.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
[ -x "$TL_BIN/tally" ] || tl_fail "$TL_BIN/tally is missing (make release)"
tl_require_cmd tmux
tally() { "$TL_BIN/tally" -b "$TL_BROKER" --timeout 10s "$@"; }

tl_start_broker --override num.partitions=2
seq 1 200000 | tally produce big

sock=$TL_TMP/tmux.sock
tmux -S "$sock" -f /dev/null new-session -d -x 200 -y 40 "env -i PATH=$PATH TERM=xterm HOME=$TL_TMP bash --norc --noprofile"
trap 'st=$?; tmux -S "$sock" kill-server 2>/dev/null; (exit $st); tl_on_exit' EXIT

# Types @1 and waits (10 s) until the pane shows a line matching ERE @2.
run_until()
{
	local i
	tmux -S "$sock" send-keys "$1" Enter
	for i in $(seq 1 200); do
		tmux -S "$sock" capture-pane -p -e -S -200 >"$TL_TMP/pane"
		grep -Eq -- "$2" "$TL_TMP/pane" && return 0
		sleep 0.05
	done
	tl_fail "the terminal never showed /$2/ after '$1': $(cat "$TL_TMP/pane")"
}
t="$TL_BIN/tally -b $TL_BROKER"

tl_log "tables and colors"
run_until "clear; $t topic describe big; echo END-\$((1))" '^END-1$'
grep -q $'\033\\[1mTOPIC  PARTITION  LEADER  EPOCH  REPLICAS  ISR  START  END' "$TL_TMP/pane" ||
	tl_fail "no aligned bold header: $(cat "$TL_TMP/pane")"
grep -Eq '^big    1          1       0      1         1    0      [0-9]+' "$TL_TMP/pane" || tl_fail "rows not aligned"
run_until "clear; $t topic describe nope; echo END-\$((2))" '^END-2$'
grep -q $'\033\\[31merror' "$TL_TMP/pane" || tl_fail "the error is not red on a terminal"
run_until "clear; NO_COLOR=1 $t topic describe nope; $t --color never topic list; echo END-\$((3))" '^END-3$'
grep -q $'\033\\[' "$TL_TMP/pane" && tl_fail "colors despite NO_COLOR / --color never: $(cat -v "$TL_TMP/pane")"

tl_log "progress bar"
run_until "clear; $t tail big -o 0:end > $TL_TMP/out; echo END-\$((4))" '^END-4$'
grep -Eq '\[#{30}\] 100% 200,000/200,000 offsets, [0-9,]+ records/s, ETA 0:00' "$TL_TMP/pane" ||
	tl_fail "no progress bar: $(cat "$TL_TMP/pane")"
[ "$(wc -l <"$TL_TMP/out")" = 200000 ] || tl_fail "the bounded read wrote $(wc -l <"$TL_TMP/out") lines"
# A stop past the end waits for records: the bar shows how far it got.
run_until "clear; $t tail big -o 0:150000 > /dev/null" \
	'\] +[0-9]{2}% 200,000/300,000 offsets, [0-9,]+ records/s, ETA (--:--|[0-9]+:[0-9]{2})'
tmux -S "$sock" send-keys C-c
run_until "echo END-\$((6))" '^END-6$'

tl_log "rate line while following, produce summary"
run_until "clear; $t tail big > /dev/null" '^0 records, 0/s'
seq 1 5000 | tally produce big
run_until "" '^5,000 records, '
tmux -S "$sock" send-keys C-c
run_until "clear; seq 1 1000 | $t produce big; echo END-\$((7))" '^END-7$'
grep -q '1000 records to big in' "$TL_TMP/pane" || tl_fail "no produce summary on a terminal: $(cat "$TL_TMP/pane")"
tl_stop_broker
tl_log "ok"
