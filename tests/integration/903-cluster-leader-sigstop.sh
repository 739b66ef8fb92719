#!/usr/bin/env bash
# 902 with a paused leader instead of a killed one: SIGSTOP until its lease expires and
# a new leader is elected, then SIGCONT. The zombie must learn it was replaced, stop
# acknowledging, truncate what only it has, and follow.
TL_FAILOVER_MODE=stop exec "$(dirname "${BASH_SOURCE[0]}")/902-cluster-leader-kill9.sh"
