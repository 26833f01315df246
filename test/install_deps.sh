#!/usr/bin/env bash
# Installs what viewmig needs to build and test on Debian bookworm (run as root). Skips apt when
# every package is already there, so `make test` and `make demo` stay fast on a prepared machine.
set -euo pipefail
packages=(postgresql-15 postgresql-server-dev-15 postgresql-common libboost1.81-dev libgtest-dev
          cmake g++ make libipc-run-perl)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "== installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi
