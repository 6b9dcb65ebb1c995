#!/usr/bin/env bash
# Install the Debian packages the test suite uses: sipp (package sip-tester)
# and tshark. Idempotent: does nothing when both are already installed.
# Other package names given as arguments are installed instead (the Makefile
# uses this for python3-venv when the system Python cannot create a venv).
# Tests that need these tools skip when they are missing, so on a system
# without apt this script only warns.
set -euo pipefail

PACKAGES=(sip-tester tshark)
if [ "$#" -gt 0 ]; then
    PACKAGES=("$@")
fi

if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg >/dev/null 2>&1; then
    echo "install-system-deps: apt-get/dpkg not found; skipping ${PACKAGES[*]}" \
         "(tests that need them will be skipped)" >&2
    exit 0
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed'; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-system-deps: already installed: ${PACKAGES[*]}"
    exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        echo "install-system-deps: not root and no sudo; cannot install ${missing[*]}" >&2
        exit 0
    fi
fi

export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer no, without a prompt.
echo "wireshark-common wireshark-common/install-setuid boolean false" \
    | "${SUDO[@]}" debconf-set-selections

echo "install-system-deps: installing ${missing[*]}"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${missing[@]}"
