#!/usr/bin/env bash
# make bench: installs the peers slolab is measured against when they are
# missing (Debian wrk, nginx-light, hey and prometheus as root; vegeta v12.13.0 and
# Toxiproxy v2.12.0 with go install), raises the open-files limit for the
# 10,000-connection memory test, then runs every benchmark in one session and
# regenerates docs/benchmarks.md (go run ./bench; its flags pass through).
#
#   bench/run.sh                          # everything, defaults sized for ~15 min on 2 cores
#   bench/run.sh -only proxy -rounds 5    # flags of go run ./bench (-h lists them)
set -euo pipefail
cd "$(dirname "$0")/.."

VEGETA_VERSION=v12.13.0
TOXIPROXY_VERSION=v2.12.0
gobin=$(go env GOPATH)/bin
export PATH="$gobin:/usr/sbin:/sbin:$PATH"

need_apt=()
for pair in wrk:wrk nginx:nginx-light hey:hey promtool:prometheus; do
  cmd=${pair%%:*} pkg=${pair##*:}
  command -v "$cmd" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "bench: missing Debian packages ${need_apt[*]}: run as root to install them, or apt-get install them" >&2
    exit 1
  fi
  echo "bench: installing ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# has_module BINARY MODULE VERSION: BINARY was built from MODULE at VERSION.
has_module() { go version -m "$1" 2>/dev/null | awk -v m="$2" -v v="$3" '$1 == "mod" && $2 == m && $3 == v { ok = 1 } END { exit !ok }'; }
if ! has_module "$gobin/vegeta" github.com/tsenart/vegeta/v12 "$VEGETA_VERSION"; then
  echo "bench: installing vegeta $VEGETA_VERSION" >&2
  go install "github.com/tsenart/vegeta/v12@$VEGETA_VERSION"
fi
# Toxiproxy's server installs as "server"; bench finds it by its build info.
if ! has_module "$gobin/server" github.com/Shopify/toxiproxy/v2 "$TOXIPROXY_VERSION"; then
  echo "bench: installing toxiproxy $TOXIPROXY_VERSION" >&2
  go install "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION"
fi

# 10,000 client connections in this process tree, and as many again at the
# proxy: raise the limit as far as allowed (go run ./bench checks it).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

exec go run ./bench "$@"
