#!/usr/bin/env bash
# Installs the Debian packages Strata builds, tests and runs with, only when missing.
# Debian packages that ship services (prometheus) must not start them: a policy-rc.d
# forbids service starts for the duration of the install.
set -euo pipefail

pkgs=(build-essential cmake pkg-config clang libclang-rt-14-dev
      libmicrohttpd-dev libprotobuf-c-dev protobuf-c-compiler libsnappy-dev libzstd-dev
      libpcre2-dev libroaring-dev libxxhash-dev libcmocka-dev libcurl4-openssl-dev libgrpc-dev
      prometheus python3 python3-requests python3-snappy python3-protobuf python3-grpcio
      libjson-c-dev zlib1g-dev)

# Node.js and npm run the OpenTelemetry JS SDK in the integration tests (tests/integration/otel-js,
# installed by tools/install-test-deps.sh). A node that is already on PATH (say from NodeSource,
# whose nodejs package bundles npm) is kept: Debian's npm package would conflict with it.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    pkgs+=(nodejs npm)
fi

missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

sudo_cmd=()
[ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
echo "install-deps: installing ${missing[*]}" >&2
made_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${sudo_cmd[@]}" chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
fi
drop_policy() { if [ "$made_policy" = 1 ]; then "${sudo_cmd[@]}" rm -f /usr/sbin/policy-rc.d; fi; }
trap drop_policy EXIT
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
