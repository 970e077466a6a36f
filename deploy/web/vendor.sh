#!/usr/bin/env bash
# Refresh the web page's vendored libraries from npm, by name and pinned version (`make web-vendor`).
# Only a maintainer runs this; the page itself needs no Node.js, npm or network. The files land in
# src/agent/web/static/vendor/ next to each package's licence, and VENDOR.json records versions and
# SHA-256 sums (tests/unit/test_web_static.py checks them).
set -euo pipefail
cd "$(dirname "$0")/../.."
VENDOR=src/agent/web/static/vendor
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# name@version  file-in-package  destination-dir
PACKAGES=(
    "markdown-it@15.0.3 dist/browser/markdown-it.umd.min.js markdown-it"
    "@highlightjs/cdn-assets@11.12.0 highlight.min.js highlight.js"
)
for entry in "${PACKAGES[@]}"; do
    read -r spec file dest <<<"$entry"
    (cd "$WORK" && npm pack --silent "$spec" >/dev/null)
    tarball=$(ls -t "$WORK"/*.tgz | head -n 1)
    mkdir -p "$WORK/x" && tar xzf "$tarball" -C "$WORK/x"
    mkdir -p "$VENDOR/$dest"
    cp "$WORK/x/package/$file" "$VENDOR/$dest/"
    cp "$WORK/x/package/LICENSE" "$VENDOR/$dest/LICENSE"
    rm -rf "$WORK/x" "$tarball"
done

python3 - "$VENDOR" <<'PY'
import hashlib, json, sys
from pathlib import Path
vendor = Path(sys.argv[1])
packages = {
    "markdown-it": {"npm": "markdown-it", "version": "15.0.3", "license": "MIT"},
    "highlight.js": {"npm": "@highlightjs/cdn-assets", "version": "11.12.0", "license": "BSD-3-Clause"},
}
for directory, info in packages.items():
    info["files"] = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((vendor / directory).iterdir())
    }
(vendor / "VENDOR.json").write_text(json.dumps(packages, indent=2) + "\n")
PY
echo "Vendored into $VENDOR (see VENDOR.json)."
