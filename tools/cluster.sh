#!/usr/bin/env bash
# make cluster: etcd and three tallyd brokers on loopback, data under ./tally-cluster,
# in the foreground; Ctrl-C stops them (brokers first, with a controlled shutdown).
#   TALLY_CLUSTER_DIR   data directory (default ./tally-cluster)
#   TALLY_CLUSTER_PORT  first broker port (default 9092; brokers use 9092, 9093, 9094)
#   TALLY_ETCD_PORT     etcd client port (default 2379; its peer port is the next one)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${TALLY_CLUSTER_DIR:-./tally-cluster}
base=${TALLY_CLUSTER_PORT:-9092}
etcd_port=${TALLY_ETCD_PORT:-2379}
endpoint=http://127.0.0.1:$etcd_port
mkdir -p "$dir"
pids=()

stop()
{
	trap - INT TERM EXIT
	echo "cluster: stopping"
	for pid in "${pids[@]:1}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]:1}"; do wait "$pid" 2>/dev/null || true; done
	kill -TERM "${pids[0]}" 2>/dev/null || true
	wait "${pids[0]}" 2>/dev/null || true
	exit 0
}
trap stop INT TERM EXIT

command -v etcd >/dev/null || { echo "cluster: etcd is not installed (make deps)" >&2; exit 1; }
etcd --name tally --data-dir "$dir/etcd" --listen-client-urls "$endpoint" \
	--advertise-client-urls "$endpoint" \
	--listen-peer-urls "http://127.0.0.1:$((etcd_port + 1))" \
	--initial-advertise-peer-urls "http://127.0.0.1:$((etcd_port + 1))" \
	--initial-cluster "tally=http://127.0.0.1:$((etcd_port + 1))" >"$dir/etcd.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
	ETCDCTL_API=3 etcdctl --endpoints "$endpoint" endpoint health >/dev/null 2>&1 && break
	sleep 0.1
done
ETCDCTL_API=3 etcdctl --endpoints "$endpoint" endpoint health >/dev/null 2>&1 ||
	{ echo "cluster: etcd did not start, see $dir/etcd.log" >&2; exit 1; }
echo "cluster: etcd on $endpoint (log $dir/etcd.log)"

bootstrap=
for i in 1 2 3; do
	port=$((base + i - 1))
	mkdir -p "$dir/broker-$i"
	./build/bin/tallyd --config config/server.properties \
		--override "node.id=$i" --override "listeners=PLAINTEXT://127.0.0.1:$port" \
		--override "log.dirs=$dir/broker-$i" --override "metadata.etcd.endpoints=$endpoint" \
		--override default.replication.factor=3 --override min.insync.replicas=2 \
		>"$dir/broker-$i.log" 2>&1 &
	pids+=($!)
	bootstrap=${bootstrap:+$bootstrap,}127.0.0.1:$port
	echo "cluster: broker $i on 127.0.0.1:$port (data $dir/broker-$i, log $dir/broker-$i.log)"
done
echo "cluster: bootstrap servers $bootstrap"
echo "cluster: try  build/bin/tally -b $bootstrap cluster info"
echo "cluster: Ctrl-C stops the cluster"
wait -n "${pids[@]}" || true
echo "cluster: a process exited; see the logs in $dir" >&2
stop
