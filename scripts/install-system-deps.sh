#!/usr/bin/env bash
# Install the Debian packages the test suite uses: sipp (package sip-tester),
# tshark, the interop peers baresip (baresip-core) and kamailio (its
# registrar, usrloc, auth, ctl ... modules and kamcmd are in the main package;
# kamailio-sqlite-modules for the registrar benchmark), and the databases the
# location store runs on: redis-server and postgresql.
# Idempotent: does nothing when all are already installed. Non-interactive,
# without recommended packages.
# Other package names given as arguments are installed instead (the Makefile
# uses this for python3-venv when the system Python cannot create a venv).
# Tests that need these tools skip when they are missing, so on a system
# without apt this script only warns.
#
# These packages would start system services (kamailio on port 5060, redis,
# postgresql): while installing, a policy-rc.d that forbids starting services
# is put in place (unless the machine already has one), and the services are
# then disabled and stopped if they run anyway. The tests start their own
# kamailio, redis-server and postgres on free loopback ports with throwaway
# data directories.
set -euo pipefail

PACKAGES=(sip-tester tshark baresip-core kamailio kamailio-sqlite-modules redis-server postgresql)
SERVICES=(kamailio redis-server postgresql)
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

services=()
for pkg in "${missing[@]}"; do
    for service in "${SERVICES[@]}"; do
        if [ "$pkg" = "$service" ]; then
            services+=("$service")
        fi
    done
done

# Keep package scripts from starting services (kamailio) during the install.
POLICY=/usr/sbin/policy-rc.d
added_policy=no
remove_policy() {
    if [ "$added_policy" = yes ]; then
        "${SUDO[@]}" rm -f "$POLICY"
    fi
}
trap remove_policy EXIT
if [ "${#services[@]}" -gt 0 ] && [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\n# install-system-deps.sh: start no service while installing\nexit 101\n' \
        | "${SUDO[@]}" tee "$POLICY" >/dev/null
    "${SUDO[@]}" chmod 755 "$POLICY"
    added_policy=yes
fi

export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer no, without a prompt.
echo "wireshark-common wireshark-common/install-setuid boolean false" \
    | "${SUDO[@]}" debconf-set-selections

echo "install-system-deps: installing ${missing[*]}"
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}"

for service in "${services[@]}"; do
    # No system service: not now, not at boot.
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        "${SUDO[@]}" systemctl disable --now "$service.service" >/dev/null 2>&1 || true
    else
        if [ -x "/etc/init.d/$service" ]; then
            "${SUDO[@]}" "/etc/init.d/$service" stop >/dev/null 2>&1 || true
        fi
        if command -v update-rc.d >/dev/null 2>&1; then
            "${SUDO[@]}" update-rc.d "$service" disable >/dev/null 2>&1 || true
        fi
    fi
done
