#!/bin/sh
# Install what the bench-runner image needs from the base image's distribution, only when missing:
# python3 with venv/ensurepip, CA certificates, and adb (Debian/Ubuntu package "adb"; when the
# distribution has none, the Dockerfile links adbutils' bundled adb instead).
# Works on Debian/Ubuntu (apt-get). Other bases must already provide python3 with venv.
set -eu

missing=""
if ! command -v python3 >/dev/null 2>&1; then
    missing="$missing python3 python3-venv"
elif ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    missing="$missing python3-venv"
fi
[ -e /etc/ssl/certs/ca-certificates.crt ] || missing="$missing ca-certificates"
want_adb=0
command -v adb >/dev/null 2>&1 || want_adb=1

if [ -z "$missing" ] && [ "$want_adb" = 0 ]; then
    echo "install-os-deps: nothing to install"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    if [ -n "$missing" ]; then
        echo "install-os-deps: the base image lacks:$missing and has no apt-get;" >&2
        echo "  use a Debian/Ubuntu base or one that provides python3 with the venv module" >&2
        exit 1
    fi
    exit 0  # adb comes from adbutils
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
if [ -n "$missing" ]; then
    # shellcheck disable=SC2086
    apt-get install -y -q --no-install-recommends $missing
fi
if [ "$want_adb" = 1 ]; then
    apt-get install -y -q --no-install-recommends adb \
        || echo "install-os-deps: no 'adb' package here; adbutils' bundled adb will be used"
fi
apt-get clean
rm -rf /var/lib/apt/lists/*
