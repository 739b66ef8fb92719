# certs.sh - a throwaway PKI for TLS tests and benches; source it, then
#   tl_make_certs DIR
# writes into DIR (EC P-256 keys, quick to make, valid 2 days):
#   ca.pem                 the test CA
#   broker.pem             broker certificate (CN=localhost, SAN localhost and 127.0.0.1),
#                          its chain and its private key: ssl.keystore.location
#   broker-enc.pem         the same with the key encrypted under password "brokerpw"
#   client.crt client.key  a client certificate of the CA, subject O=Tally,OU=eng,CN=app1
#                          (principal "User:CN=app1,OU=eng,O=Tally")
#   long.crt long.key      a client certificate of the CA whose subject is 144 bytes
#   huge.crt huge.key      one whose subject is longer than a principal may be (1024)
#   rogue-ca.pem rogue.crt rogue.key   a client certificate from another CA
#   rogue-broker.pem       a broker keystore like broker.pem (same names) from that CA
tl_make_certs()
{
	local d=$1
	mkdir -p "$d"
	(
		set -e
		cd "$d"
		q() { "$@" >/dev/null 2>&1 || { echo "certs.sh: failed: $*" >&2; return 1; }; }
		ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
		q openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 2 -subj "/CN=Tally Test CA"
		q openssl req -x509 "${ec[@]}" -keyout rogue-ca.key -out rogue-ca.pem -days 2 -subj "/CN=Rogue CA"
		printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >san.ext
		q openssl req "${ec[@]}" -keyout broker.key -out broker.csr -subj "/O=Tally/CN=localhost"
		q openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out broker.crt -days 2 -extfile san.ext
		cat broker.crt broker.key >broker.pem
		q openssl pkey -in broker.key -aes256 -passout pass:brokerpw -out broker-enc.key
		cat broker.crt broker-enc.key >broker-enc.pem
		q openssl req "${ec[@]}" -keyout client.key -out client.csr -subj "/O=Tally/OU=eng/CN=app1"
		q openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.crt -days 2
		long="/C=US/ST=California/L=San Francisco/O=Example Corporation Incorporated/OU=Platform Engineering Department/CN=svc-orders-consumer.prod.example.com"
		q openssl req "${ec[@]}" -keyout long.key -out long.csr -subj "$long"
		q openssl x509 -req -in long.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out long.crt -days 2
		huge=$(for i in $(seq 1 20); do printf '/OU=unit-%02d-of-a-very-deep-organisation-chart-for-testing-only' "$i"; done)
		q openssl req "${ec[@]}" -keyout huge.key -out huge.csr -subj "$huge/CN=huge"
		q openssl x509 -req -in huge.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out huge.crt -days 2
		q openssl req "${ec[@]}" -keyout rogue.key -out rogue.csr -subj "/CN=mallory"
		q openssl x509 -req -in rogue.csr -CA rogue-ca.pem -CAkey rogue-ca.key -CAcreateserial -out rogue.crt -days 2
		q openssl x509 -req -in broker.csr -CA rogue-ca.pem -CAkey rogue-ca.key -CAcreateserial -out rogue-broker.crt -days 2 -extfile san.ext
		cat rogue-broker.crt broker.key >rogue-broker.pem
	)
}
