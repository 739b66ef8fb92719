# cluster.sh - helpers for tests of a replicated cluster on loopback; source it after
# lib.sh:
#   . "$(dirname "$0")/../lib.sh"
#   . "$(dirname "$0")/../cluster.sh"
# It starts its own etcd (free ports, data under TL_TMP) and N tallyd brokers with
# node.id 1..N, each with its own port (fixed for the test, so restarts keep it),
# log.dirs TL_TMP/b<i> and log TL_TMP/tallyd-<i>.log. Everything is killed on exit
# (lib.sh's trap kills the test's background jobs).
#
# Sets, once tl_cluster_start ran:
#   TL_ETCD          http://127.0.0.1:PORT, the etcd client URL
#   TL_BOOTSTRAP     127.0.0.1:P1,127.0.0.1:P2,... for -b / bootstrap.servers
#   TL_CPORT[i]      broker i's port;  TL_CPID[i] its pid (empty when stopped)
#   TL_CPORT2[i]     broker i's second port, when TL_CLISTENER2 names a second listener
#                    (e.g. TL_CLISTENER2=SASL_PLAINTEXT before tl_cluster_start): each
#                    broker then serves PLAINTEXT on TL_CPORT[i] and it on TL_CPORT2[i]
#   TL_CLISTENER1    the listener name on TL_CPORT[i] (default PLAINTEXT; set before
#                    tl_cluster_start, e.g. SASL_SSL for a cluster with no PLAINTEXT port)
#   TL_CTALLY_ARGS   array of tally CLI options the helpers pass (security.protocol, ...)
#   TL_CETCD[i]      broker i's metadata.etcd.endpoints when set (default TL_ETCD); see
#                    tl_etcd_cuttable
# Functions:
#   tl_etcd_start / tl_etcd_kill9 / tl_etcd_restart
#   tl_etcd_cuttable N                    etcd, and each broker 1..N reaching it through
#                                         its own forwarder (tests/progs/tcp_cut.py): call
#                                         before tl_cluster_start
#   tl_etcd_cut I / tl_etcd_heal I        cut broker I off etcd (clients and the other
#                                         brokers still reach it) / reconnect it
#   tl_cluster_start N [tallyd args...]   etcd, then N brokers; waits until each registered
#   tl_cbroker_start I                    (re)start broker I with the same args
#   tl_cbroker_kill9 I / tl_cbroker_stop I (SIGTERM; fails unless it exits 0)
#   tl_cbroker_sigstop I / tl_cbroker_sigcont I
#   tl_cbroker_alive I
#   tl_cluster_wait_isr TOPIC PARTITIONS RF [TIMEOUT_S]  until every partition has a leader
#                                           and RF replicas in its ISR (tally topic describe)
#   tl_cluster_leader TOPIC PARTITION      the leader's node id (read from etcd)
#   tl_cgrep I ERE                         broker I's log has a line matching ERE

TL_ETCD=
TL_ETCD_PID=
TL_ETCD_PEER=
TL_BOOTSTRAP=
TL_CPORT=()
TL_CPORT2=()
TL_CLISTENER2=${TL_CLISTENER2:-}
TL_CLISTENER1=${TL_CLISTENER1:-PLAINTEXT}
[ -n "${TL_CTALLY_ARGS+x}" ] || TL_CTALLY_ARGS=()
TL_CPID=()
TL_CETCD=()
TL_CETCD_CONTROL=
TL_CARGS=()
TL_CN=0
TL_TALLY=$TL_BIN/tally

tl_etcd_start()
{
	local cport pport deadline
	tl_require_cmd etcd etcdctl
	if [ -z "$TL_ETCD" ]; then
		cport=$(tl_pick_port) || tl_fail "no free port for etcd"
		pport=$(tl_pick_port) || tl_fail "no free port for etcd"
		while [ "$pport" = "$cport" ]; do pport=$(tl_pick_port); done
		TL_ETCD=http://127.0.0.1:$cport
		TL_ETCD_PEER=http://127.0.0.1:$pport
		mkdir -p "$TL_TMP/etcd"
	fi
	etcd --name tally-test --data-dir "$TL_TMP/etcd" \
		--listen-client-urls "$TL_ETCD" --advertise-client-urls "$TL_ETCD" \
		--listen-peer-urls "$TL_ETCD_PEER" --initial-advertise-peer-urls "$TL_ETCD_PEER" \
		--initial-cluster "tally-test=$TL_ETCD_PEER" >>"$TL_TMP/etcd.log" 2>&1 &
	TL_ETCD_PID=$!
	deadline=$(($(date +%s) + 20))
	until ETCDCTL_API=3 etcdctl --endpoints "$TL_ETCD" endpoint health >/dev/null 2>&1; do
		[ "$(date +%s)" -lt "$deadline" ] || tl_fail "etcd did not start (see $TL_TMP/etcd.log)"
		tl_pid_alive "$TL_ETCD_PID" || tl_fail "etcd exited (see $TL_TMP/etcd.log)"
		sleep 0.1
	done
	export TL_ETCD
}

tl_etcd_cuttable()
{
	local n=$1 i port ports=() up
	tl_require_cmd python3 ss
	tl_etcd_start
	TL_CETCD_CONTROL=$TL_TMP/etcd-cut
	for i in $(seq 1 "$n"); do
		port=$(tl_pick_port) || tl_fail "no free port for an etcd forwarder"
		ports+=("$port")
		TL_CETCD[$i]=http://127.0.0.1:$port
	done
	python3 "$TL_ROOT/tests/progs/tcp_cut.py" "${TL_ETCD##*:}" "$TL_CETCD_CONTROL" \
		"${ports[@]}" >>"$TL_TMP/tcp_cut.log" 2>&1 &
	for port in "${ports[@]}"; do
		up=0
		for _ in $(seq 100); do
			ss -Htln "sport = :$port" | grep -q . && up=1 && break
			sleep 0.05
		done
		[ $up = 1 ] || tl_fail "the etcd forwarder does not listen on $port: $(tail -3 "$TL_TMP/tcp_cut.log")"
	done
}

tl_etcd_cut() { : >"$TL_CETCD_CONTROL.${TL_CETCD[$1]##*:}"; }
tl_etcd_heal() { rm -f "$TL_CETCD_CONTROL.${TL_CETCD[$1]##*:}"; }

tl_etcd_kill9()
{
	kill -9 "$TL_ETCD_PID" 2>/dev/null || true
	wait "$TL_ETCD_PID" 2>/dev/null || true
	TL_ETCD_PID=
}

tl_cbroker_alive()
{
	tl_pid_alive "${TL_CPID[$1]:-}"
}

tl_cgrep()
{
	grep -Eq -- "$2" <(tl_log_text "$TL_TMP/tallyd-$1.log" 2>/dev/null)
}

# tl_cwait_log I ERE SECONDS [WHY]: waits until broker I's log has a line matching ERE;
# fails the test after SECONDS with WHY (default: which broker logged what not).
tl_cwait_log()
{
	local deadline=$((SECONDS + $3))
	until tl_cgrep "$1" "$2"; do
		[ $SECONDS -lt $deadline ] ||
			tl_fail "${4:-broker $1 logged no line matching '$2' within $3 s}"
		sleep 0.1
	done
}

tl_cbroker_start()
{
	local i=$1 log=$TL_TMP/tallyd-$1.log from deadline
	tl_cbroker_alive "$i" && tl_fail "broker $i is already running"
	mkdir -p "$TL_TMP/b$i"
	printf '=== %s start broker %s\n' "$(date +%H:%M:%S.%3N)" "$i" >>"$log"
	from=$(($(stat -c %s "$log") + 1))
	local listeners=$TL_CLISTENER1://127.0.0.1:${TL_CPORT[$i]}
	[ -z "$TL_CLISTENER2" ] || listeners=$listeners,$TL_CLISTENER2://127.0.0.1:${TL_CPORT2[$i]}
	"$TL_TALLYD" --override "listeners=$listeners" \
		--override "log.dirs=$TL_TMP/b$i" --override "node.id=$i" \
		--override "metadata.etcd.endpoints=${TL_CETCD[$i]:-$TL_ETCD}" \
		--override "broker.session.timeout.ms=3000" \
		--override "replica.lag.time.max.ms=5000" \
		--override "replica.fetch.backoff.ms=200" \
		--override "leader.imbalance.check.interval.seconds=3600" \
		"${TL_CARGS[@]}" >>"$log" 2>&1 &
	TL_CPID[$i]=$!
	deadline=$(($(date +%s) + 20))
	while :; do
		if tail -c "+$from" "$log" | grep -c 'cluster: registered' >/dev/null; then
			return 0
		fi
		tl_cbroker_alive "$i" || { tail -n 20 "$log" >&2; tl_fail "broker $i exited at start"; }
		[ "$(date +%s)" -lt "$deadline" ] || tl_fail "broker $i did not register within 20 s"
		sleep 0.05
	done
}

tl_cluster_start()
{
	local n=$1 i port
	shift
	TL_CN=$n
	TL_CARGS=("$@")
	[ -x "$TL_TALLYD" ] || tl_fail "$TL_TALLYD is missing (make release)"
	tl_pid_alive "$TL_ETCD_PID" || tl_etcd_start
	TL_BOOTSTRAP=
	for i in $(seq 1 "$n"); do
		port=$(tl_pick_port) || tl_fail "no free port"
		TL_CPORT[$i]=$port
		if [ -n "$TL_CLISTENER2" ]; then
			port=$(tl_pick_port) || tl_fail "no free port"
			TL_CPORT2[$i]=$port
		fi
		TL_BOOTSTRAP=${TL_BOOTSTRAP:+$TL_BOOTSTRAP,}127.0.0.1:${TL_CPORT[$i]}
	done
	export TL_BOOTSTRAP
	for i in $(seq 1 "$n"); do
		tl_cbroker_start "$i"
	done
}

tl_cbroker_kill9()
{
	local pid=${TL_CPID[$1]:-}
	[ -n "$pid" ] || tl_fail "broker $1 is not running"
	tl_pid_alive "$pid" || tl_fail "broker $1 died on its own before the planned kill"
	kill -9 "$pid"
	wait "$pid" 2>/dev/null || true
	TL_CPID[$1]=
}

tl_cbroker_stop()
{
	local pid=${TL_CPID[$1]:-} rc=0
	[ -n "$pid" ] || tl_fail "broker $1 is not running"
	kill -TERM "$pid"
	wait "$pid" || rc=$?
	TL_CPID[$1]=
	[ $rc -eq 0 ] || tl_fail "broker $1 exited with status $rc after SIGTERM (want 0)"
}

tl_cbroker_sigstop()
{
	kill -STOP "${TL_CPID[$1]}"
}

tl_cbroker_sigcont()
{
	kill -CONT "${TL_CPID[$1]}"
}

# Prints "leader isr_count" per partition of TOPIC, from tally topic describe.
tl_cluster_describe()
{
	"$TL_TALLY" topic describe "$1" -b "$TL_BOOTSTRAP" "${TL_CTALLY_ARGS[@]}" 2>/dev/null || true
}

# From etcd itself: the CLI would add its own metadata refresh delays.
tl_cluster_leader()
{
	ETCDCTL_API=3 etcdctl --endpoints "$TL_ETCD" get "/tally/partitions/$1/$2" \
		--print-value-only 2>/dev/null | sed -n 's/^leader=\(-*[0-9]*\) .*/\1/p'
}

# tl_cluster_wait_leader TOPIC PARTITION BROKER SECONDS [WHY]: waits until etcd names
# BROKER the partition's leader; fails the test after SECONDS with WHY.
tl_cluster_wait_leader()
{
	local deadline=$((SECONDS + $4))
	until [ "$(tl_cluster_leader "$1" "$2")" = "$3" ]; do
		[ $SECONDS -lt $deadline ] ||
			tl_fail "${5:-broker $3 did not become the leader of $1-$2 within $4 s}"
		sleep 0.2
	done
}

# The leader epoch of partition $2 of topic $1, read from etcd.
tl_cluster_epoch()
{
	ETCDCTL_API=3 etcdctl --endpoints "$TL_ETCD" get "/tally/partitions/$1/$2" \
		--print-value-only 2>/dev/null | sed -n 's/.* leader_epoch=\([0-9]*\).*/\1/p'
}

tl_cluster_wait_isr()
{
	local topic=$1 parts=$2 rf=$3 timeout=${4:-30} deadline ok
	deadline=$(($(date +%s) + timeout))
	while :; do
		ok=$(tl_cluster_describe "$topic" |
			awk -v rf="$rf" '$2 ~ /^[0-9]+$/ && $3 >= 0 { n = split($6, a, ","); if (n == rf) c++ } END { print c + 0 }')
		[ "$ok" -ge "$parts" ] && return 0
		[ "$(date +%s)" -lt "$deadline" ] || {
			tl_cluster_describe "$topic" >&2
			tl_fail "topic $topic: not every partition has $rf replicas in its ISR after ${timeout}s"
		}
		sleep 0.2
	done
}

tl_cluster_on_exit()
{
	local rc=$? i
	set +e
	for i in "${!TL_CPID[@]}"; do
		[ -n "${TL_CPID[$i]}" ] && kill -9 "${TL_CPID[$i]}" 2>/dev/null
	done
	[ -n "$TL_ETCD_PID" ] && kill -9 "$TL_ETCD_PID" 2>/dev/null
	if [ "$TL_FAILED" -ne 0 ] || { [ $rc -ne 0 ] && [ $rc -ne 77 ]; }; then
		for i in $(seq 1 "$TL_CN"); do
			echo "--- last 25 lines of tallyd-$i.log" >&2
			tl_log_text "$TL_TMP/tallyd-$i.log" 2>/dev/null | grep -v ' info config: ' | tail -n 25 >&2
		done
	fi
	(exit "$rc")
	tl_on_exit
}
trap tl_cluster_on_exit EXIT
