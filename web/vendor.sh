#!/usr/bin/env bash
# Vendors the dashboard's front-end libraries into web/static/vendor, from the
# versions pinned by web/package-lock.json. Run it after changing package.json
# (npm install --package-lock-only), then commit web/static/vendor: the Go
# build embeds those files, so building slolab needs no npm and no network.
# TestVendoredMatchesLockfile checks the vendored files against the lockfile.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --ignore-scripts --no-audit --no-fund
out=static/vendor
mkdir -p "$out"
src=node_modules/uplot
cp "$src/dist/uPlot.iife.min.js" "$src/dist/uPlot.min.css" "$out/"
cp "$src/LICENSE" "$out/uPlot.LICENSE"
version=$(node -p "require('./$src/package.json').version")
sum() { sha256sum "$1" | cut -d' ' -f1; }
cat >"$out/vendor.json" <<JSON
{
  "uplot": {
    "version": "$version",
    "license": "MIT",
    "files": {
      "uPlot.iife.min.js": "$(sum "$out/uPlot.iife.min.js")",
      "uPlot.min.css": "$(sum "$out/uPlot.min.css")",
      "uPlot.LICENSE": "$(sum "$out/uPlot.LICENSE")"
    }
  }
}
JSON
echo "vendored uplot $version into web/$out"
