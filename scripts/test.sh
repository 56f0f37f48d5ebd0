#!/usr/bin/env bash
# Runs telespool's whole test suite: the command the README gives.
#
#   scripts/test.sh                  # every test, bench and example target
#   scripts/test.sh wire_contract    # extra arguments go to `cargo test`
#
# Installs what the tests need first when it is missing:
#   - nats-server (Debian package `nats-server`), for the NATS JetStream sink
#     tests; as root, or through sudo when it is available.
set -euo pipefail

cd "$(dirname "$0")/.."

# The tests start their own nats-server processes; it only has to be on PATH.
install_nats_server() {
    if command -v nats-server >/dev/null 2>&1; then
        return 0
    fi
    local hint="sudo apt-get update && sudo apt-get install -y nats-server"
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo)
        else
            echo "error: nats-server is missing and this is not root (no sudo)." >&2
            echo "Install it as root, then rerun: $hint" >&2
            exit 1
        fi
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "error: nats-server is missing and apt-get is not available." >&2
        echo "On Debian or Ubuntu: $hint" >&2
        exit 1
    fi
    echo "test.sh: installing nats-server (apt-get)" >&2
    # A fresh machine may have empty package lists: update once, then install.
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server
    if ! command -v nats-server >/dev/null 2>&1; then
        echo "error: nats-server is still not on PATH after installing it." >&2
        echo "Try: $hint" >&2
        exit 1
    fi
}

if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo is missing; install Rust (stable) with rustup first." >&2
    exit 1
fi

install_nats_server
echo "test.sh: $(nats-server --version 2>&1 | head -n 1)" >&2

exec cargo test --all-targets "$@"
