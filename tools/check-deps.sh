#!/usr/bin/env bash
# Fails on an #include that crosses the module map: the `allowed` table below, one line
# per module (README.md's "What is in it" says what each module holds).
# consumer/ may also use producer/'s connection layer
# (client.c, conf.c, export.h), which both halves of libtally share.
set -euo pipefail
cd "$(dirname "$0")/.."
declare -A allowed=(
  [common]="common tally"
  [protocol]="protocol common tally"
  [log]="log protocol common tally"
  [replication]="replication log protocol common tally"
  [broker]="broker replication log protocol common tally"
  [producer]="producer protocol common log tally"
  [consumer]="consumer producer protocol common tally"
  [tools]="tools producer consumer log protocol common tally"
)
bad=0
for mod in "${!allowed[@]}"; do
  [ -d "$mod" ] || continue
  while IFS= read -r line; do
    file=${line%%:*}
    inc=$(sed -E 's/.*#include "([^"]+)".*/\1/' <<<"${line#*:}")
    top=${inc%%/*}
    [ "$top" = "$inc" ] && continue   # same-directory include
    ok=0
    for a in ${allowed[$mod]}; do [ "$a" = "$top" ] && ok=1; done
    if [ $ok = 0 ]; then echo "check-deps: $file includes \"$inc\" ($mod may not use $top)"; bad=1; fi
  done < <(grep -rn '#include "' "$mod" --include='*.c' --include='*.h' | grep -v '/tests/' | sed -E 's/^([^:]+):[0-9]+:/\1:/')
done
[ $bad = 0 ] && echo "check-deps: ok"
exit $bad
