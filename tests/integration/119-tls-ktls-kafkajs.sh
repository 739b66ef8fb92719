#!/usr/bin/env bash
# TLS data path (issue #16): Fetch's file spans under TLS go through kernel TLS
# (SSL_sendfile, zero-copy) when the kernel has it, else are read into memory and
# encrypted by OpenSSL. Both must deliver the very bytes plain sendfile does:
# (1) 24 MB of records of up to 64 KB (spans cross TLS records and the 16 KB
#     fallback buffer) produced over PLAINTEXT, read back over PLAINTEXT, over SSL with
#     ssl.ktls.enable=true and over SSL with ssl.ktls.enable=false: all three equal the
#     input; the log says which send path each run used (on a kernel without the tls
#     module both SSL runs are user-space TLS, and the log says so);
# (2) kafkajs 2.2.4 over mutual TLS: admin, produce, consumer group, delete.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$TL_ROOT/tests/certs.sh"
tl_require_cmd kcat openssl python3

certs=$TL_TMP/certs
tl_make_certs "$certs" || tl_fail "cannot make test certificates"
tl_pick_two_ports
ssl_port=$TL_PORT2
tls_broker=localhost:$ssl_port
ssl=(-X security.protocol=ssl -X "ssl.ca.location=$certs/ca.pem")
common=(--override "listeners=PLAINTEXT://127.0.0.1:$TL_PORT,SSL://127.0.0.1:$ssl_port"
	--override "ssl.keystore.location=$certs/broker.pem"
	--override "ssl.truststore.location=$certs/ca.pem" --override ssl.client.auth=requested)

# 400 records of 1..64 KB of random base64 (no newline inside), about 24 MB.
python3 - "$TL_TMP/sent" <<'EOF'
import base64, random, sys
random.seed(5)
with open(sys.argv[1], "w") as f:
    for i in range(400):
        n = random.randint(1, 48 * 1024)
        f.write(base64.b64encode(random.randbytes(n)).decode() + "\n")
EOF
sum_sent=$(md5sum <"$TL_TMP/sent" | cut -d' ' -f1)

consume() { # LABEL BROKER [kcat args]: reads the topic, compares with what was sent
	local label=$1 broker=$2
	shift 2
	timeout 60 kcat -C -q -b "$broker" "$@" -t big -o beginning -e -X fetch.max.bytes=8388608 \
		-X max.partition.fetch.bytes=8388608 >"$TL_TMP/got.$label" ||
		tl_fail "kcat -C ($label) failed"
	local sum
	sum=$(md5sum <"$TL_TMP/got.$label" | cut -d' ' -f1)
	[ "$sum" = "$sum_sent" ] ||
		tl_fail "$label: read $(wc -c <"$TL_TMP/got.$label") bytes that differ from the $(wc -c <"$TL_TMP/sent") sent"
	tl_log "$label: $(wc -c <"$TL_TMP/got.$label") bytes, identical"
}

tl_log "(1) ssl.ktls.enable=true"
tl_start_broker "${common[@]}" --override ssl.ktls.enable=true
timeout 60 kcat -P -b "$TL_BROKER" -t big -X acks=all -X message.max.bytes=1000000 -l "$TL_TMP/sent" ||
	tl_fail "kcat -P failed"
consume plaintext "$TL_BROKER"
consume tls-ktls-enabled "$tls_broker" "${ssl[@]}"
path=$(tl_log_text "$TL_TMP/tallyd.log" | grep -o 'TLS on listener=SSL sendfile=[a-z-]*' | tail -n 1)
[ -n "$path" ] || tl_fail "tallyd did not log its TLS send path"
tl_log "ssl.ktls.enable=true: $path"
tl_stop_broker

tl_log "(1) ssl.ktls.enable=false"
tl_start_broker "${common[@]}" --override ssl.ktls.enable=false
consume tls-ktls-disabled "$tls_broker" "${ssl[@]}"
tl_grep_log 'TLS on listener=SSL sendfile=user-space-tls .*ssl.ktls.enable=false' ||
	tl_fail "with ssl.ktls.enable=false tallyd did not log user-space TLS"

tl_log "(2) kafkajs over mutual TLS"
if [ -d tests/interop/node_modules/kafkajs ] && command -v node >/dev/null; then
	export TOPIC=kafkajs-tls COUNT=500 KAFKAJS_NO_PARTITIONER_WARNING=1
	export SSL_CA=$certs/ca.pem SSL_CERT=$certs/client.crt SSL_KEY=$certs/client.key
	timeout 120 node tests/interop/kafkajs_basic.js "$tls_broker" ||
		tl_fail "kafkajs over mutual TLS failed"
else
	tl_log "kafkajs is not installed (make deps runs npm ci in tests/interop): its part is left out"
fi
tl_stop_broker
tl_log "ok"
