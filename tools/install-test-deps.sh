#!/usr/bin/env bash
# Installs what the integration tests need beyond Debian packages: the OpenTelemetry JavaScript
# SDK (OTLP/HTTP and OTLP/gRPC exporters) for tests/integration/test_otlp_http.py, with `npm ci`
# from the committed package-lock.json, so every machine runs the same versions. Skipped when
# node_modules already matches the lockfile (npm writes node_modules/.package-lock.json).
set -euo pipefail

dir="$(cd "$(dirname "$0")/../tests/integration/otel-js" && pwd)"
if [ -f "$dir/node_modules/.package-lock.json" ] &&
   [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ]; then
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "install-test-deps: npm is missing; run tools/install-deps.sh first" >&2
    exit 1
fi
echo "install-test-deps: npm ci in $dir" >&2
cd "$dir"
npm ci --no-audit --no-fund --loglevel=error >&2
