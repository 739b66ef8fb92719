#!/usr/bin/env bash
# Installs what building and testing Tally needs on Debian 12, only if missing:
# Debian packages (compiler toolchain, liburing, zstd, OpenSSL, check, test clients,
# libcurl and etcd for the cluster metadata store, spin for the replication model,
# faketime and nftables for the chaos harness's clock-jump and partition nemeses, valgrind
# for test 133's instruction counts)
# and the npm lock of the kafkajs interop tests. Safe to run repeatedly.
# With --long also what only `make test-long` uses: debhelper and lintian for the
# Debian packages (test 804).
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(build-essential pkg-config liburing-dev libzstd-dev libssl-dev check
      librdkafka-dev kcat clang libclang-rt-dev fio tmux
      etcd-server etcd-client libcurl4-openssl-dev zlib1g-dev liblz4-dev libsnappy-dev
      spin faketime nftables valgrind)
if [ "${1:-}" = --long ]; then pkgs+=(debhelper lintian dpkg-dev); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! command -v node >/dev/null 2>&1; then missing+=(nodejs); fi
# Tests 704, 705, 707 and 801 parse JSON with python3; in CI a skip for its lack fails.
if ! command -v python3 >/dev/null 2>&1; then missing+=(python3); fi
if ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# kafkajs for the interop tests, exactly as pinned in the lock file.
if [ -f tests/interop/package-lock.json ]; then
  # npm's own copy of the lock (node_modules/.package-lock.json) is not byte-equal to
  # ours, so compare the installed kafkajs version with the one the lock pins.
  want=$(sed -n '/"node_modules\/kafkajs"/,/}/s/.*"version": "\([^"]*\)".*/\1/p' \
         tests/interop/package-lock.json | head -n 1)
  have=$(sed -n 's/.*"version": "\([^"]*\)".*/\1/p' \
         tests/interop/node_modules/kafkajs/package.json 2>/dev/null | head -n 1) || have=""
  if [ -z "$want" ] || [ "$want" != "$have" ]; then
    echo "install-deps: npm ci in tests/interop"
    (cd tests/interop && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
fi
