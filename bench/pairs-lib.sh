# shellcheck shell=bash disable=SC2034  # sets variables for the script that sources it
# pairs-lib.sh - sourced (not run) by the benches that alternate two tally-bench variants
# over PAIRS pairs (direct-io.sh, read-cache.sh): their shared options and run order.
#
#   . bench/pairs-lib.sh
#   pairs_options TAG "$@"; set -- "${pairs_rest[@]}"
# reads [-n PAIRS] [-o DIR] [-- REST...] into $pairs (default 5), $out (default a new
# /var/tmp/tally-bench-TAG.XXXXXX, made either way) and the array pairs_rest; sets
# $settle (SETTLE_S, default 5) and $bench (build/bin/tally-bench). An unknown option or a
# missing tally-bench exits 2, naming the calling script.
#
#   pairs_alternate A B ARGS...
# calls the caller's `run VARIANT I ARGS...` for I in 1..PAIRS: A then B on odd I, B then
# A on even I, so a drift of the machine over the runs falls on both.

pairs_options()
{
	local tag=$1 me
	me=$(basename "$0")
	shift
	pairs=5 out=
	while [ $# -gt 0 ]; do
		case $1 in
		-n) pairs=$2; shift 2 ;;
		-o) out=$2; shift 2 ;;
		--) shift; break ;;
		*) echo "$me: unknown option $1 (see the header)" >&2; exit 2 ;;
		esac
	done
	pairs_rest=("$@")
	out=${out:-$(mktemp -d "/var/tmp/tally-bench-$tag.XXXXXX")}
	mkdir -p "$out"
	settle=${SETTLE_S:-5}
	bench=build/bin/tally-bench
	[ -x $bench ] || { echo "$me: $bench missing (make release)" >&2; exit 2; }
}

pairs_alternate()
{
	local a=$1 b=$2 i
	shift 2
	for i in $(seq 1 "$pairs"); do
		if [ $((i % 2)) = 1 ]; then
			run "$a" "$i" "$@"
			run "$b" "$i" "$@"
		else
			run "$b" "$i" "$@"
			run "$a" "$i" "$@"
		fi
	done
}
