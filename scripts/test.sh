#!/usr/bin/env bash
# Runs telespool's whole test suite: the command the README gives.
#
#   scripts/test.sh                  # every test, bench and example target
#   scripts/test.sh wire_contract    # extra arguments go to `cargo test`
#
# First installs what the tests need when it is missing:
#   - nats-server (Debian package `nats-server`), for the NATS JetStream sink
#     tests: as root directly, otherwise through sudo when it is available.
set -euo pipefail

cd "$(dirname "$0")/.."

# Where Debian puts nats-server; not on a normal user's PATH.
SBIN=/usr/sbin
INSTALL_HINT="apt-get update && apt-get install -y nats-server"

# The tests start their own nats-server processes: it only has to be on PATH.
find_nats_server() {
    if command -v nats-server >/dev/null 2>&1; then
        return 0
    fi
    if [ -x "$SBIN/nats-server" ]; then
        export PATH="$PATH:$SBIN"
        return 0
    fi
    return 1
}

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    else
        sudo "$@"
    fi
}

install_nats_server() {
    if find_nats_server; then
        return 0
    fi
    if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
        echo "error: nats-server is missing, and installing it needs root (no sudo here)." >&2
        echo "As root, run: $INSTALL_HINT" >&2
        exit 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "error: nats-server is missing and apt-get is not available." >&2
        echo "On Debian or Ubuntu, as root: $INSTALL_HINT" >&2
        exit 1
    fi
    echo "test.sh: installing nats-server: $INSTALL_HINT" >&2
    # A fresh machine may have empty package lists: update once, then install.
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server
    if ! find_nats_server; then
        echo "error: nats-server is still missing after installing it." >&2
        echo "As root, run: $INSTALL_HINT" >&2
        exit 1
    fi
}

if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo is missing; install stable Rust with rustup first." >&2
    exit 1
fi

install_nats_server
echo "test.sh: using $(command -v nats-server) ($(nats-server --version 2>&1 | head -n 1))" >&2

exec cargo test --all-targets "$@"
