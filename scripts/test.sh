#!/usr/bin/env bash
# The quality gate, the same locally and in CI: installs what the tests need
# (Debian packages when run as root, pinned Go tools), then gofmt, go vet,
# golangci-lint, the import-direction check, go test -race -shuffle=on, and a
# short -fuzz run per fuzz target.
#
# SLOLAB_REQUIRE_TOOLS=1 (set by .ci/run) turns a test's "tool missing, skip"
# into a failure. SLOLAB_FUZZTIME (default 20s) bounds each fuzz smoke; 0 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."

GOLANGCI_LINT_VERSION=v2.6.2
export PATH="$(go env GOPATH)/bin:/usr/sbin:/sbin:$PATH"

# Each step prints the seconds since the gate began, to see where time goes.
step() { printf '\n==> %s (at %ds)\n' "$*" "$SECONDS"; }

step "installing test dependencies"
need_apt=()
for pair in promtool:prometheus prometheus:prometheus alertmanager:prometheus-alertmanager \
            chromium:chromium wrk:wrk; do
  cmd=${pair%%:*} pkg=${pair##*:}
  command -v "$cmd" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if ((${#need_apt[@]})); then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${need_apt[@]}" | sort -u) >/dev/null
  else
    echo "missing Debian packages (run as root to install): ${need_apt[*]}" >&2
  fi
fi
if ! golangci-lint version 2>/dev/null | grep -q "${GOLANGCI_LINT_VERSION#v}"; then
  go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@${GOLANGCI_LINT_VERSION}"
fi

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

step "go vet"
go vet ./...

step "golangci-lint ${GOLANGCI_LINT_VERSION}"
# Parallel runners are allowed: several checkouts on one machine may lint at once.
golangci-lint run --allow-parallel-runners ./...

step "imports flow one way"
go run ./scripts/importcheck

step "go test -race -shuffle=on (with every fuzz target's seed corpus)"
go test -race -shuffle=on -count=1 -timeout 15m ./...

fuzztime=${SLOLAB_FUZZTIME:-20s}
if [ "$fuzztime" != 0 ]; then
  step "fuzz smoke (${fuzztime} per target)"
  for pkg in $(go list ./...); do
    dir=$(go list -f '{{.Dir}}' "$pkg")
    for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
      echo "   $pkg $target"
      if ! out=$(go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$pkg" 2>&1); then
        echo "$out"
        echo "fuzz smoke failed: the failing input is under $dir/testdata/fuzz/$target; it now runs with go test" >&2
        exit 1
      fi
    done
  done
fi
step "all checks passed"
