#!/usr/bin/env bash
# Fails on an #include that crosses the module map: the `allowed` table below, one line
# per module (README.md's "What is in it" says what each module holds).
# libtally is four modules: client/ is the core (connections, metadata, broker selection,
# configuration, the request table, the export macro); producer/, consumer/ and admin/
# build on it and on nothing of each other.
set -euo pipefail
cd "$(dirname "$0")/.."
declare -A allowed=(
  [common]="common tally"
  [protocol]="protocol common tally"
  [log]="log protocol common tally"
  [replication]="replication log protocol common tally"
  [broker]="broker replication log protocol common tally"
  [client]="client protocol common tally"
  [producer]="producer client protocol common log tally"
  [consumer]="consumer client protocol common tally"
  [admin]="admin client protocol common tally"
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
