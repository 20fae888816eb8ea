#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what genapi needs to build, run and test, and nothing that is already there:
# Debian packages with apt-get, the JavaScript test client with `npm ci` from the committed
# lockfile. Safe to run repeatedly; `make run` and `make test` call it first.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake pkg-config libzmq3-dev libczmq-dev libmsgpack-dev
          libwebsockets-dev libjansson-dev libcmocka-dev libjwt-dev libssl-dev openssl
          clang libclang-rt-14-dev # clang and its libFuzzer runtime: `make fuzz`
          podman podman-compose runc catatonit debootstrap # the containers test (docs/operations.md)
          prometheus) # promtool and the server: tests/integration/prometheus.test.js
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "install-deps: installing ${missing[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

# npm ci only when node_modules is missing or older than the lockfile.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then
    echo "install-deps: npm ci"
    npm ci --no-audit --no-fund --loglevel=error
    touch node_modules
fi
