#!/usr/bin/env bash
# Dependency audit: `cargo deny check` with the policy in deny.toml:
#   advisories  RustSec advisories (vulnerable, unmaintained, yanked crates);
#               accepted ones are listed in deny.toml with their reasons
#   bans        crates we refuse (aws-lc, openssl-sys), wildcard versions
#   licenses    only permissive licenses
#   sources     crates.io only, no git or other registries
#
# The advisory database is a git repository on github.com
# (https://github.com/rustsec/advisory-db). Where it cannot be fetched (no
# route to github.com, as on the project's build machine, which reaches only
# crates.io, PyPI, npm and Debian), the script says so on stderr, skips the
# advisories check and runs the other three. Exit status:
#   0  no findings (advisories possibly skipped: read stderr)
#   1  findings (cargo deny's own errors)
#   2  the audit could not run (cargo-deny missing and not installable)
#
# Not a required CI step: the advisory database needs the network, and CI
# must not fail on an outage of github.com. .ci/run runs it as an optional
# step that reports but never fails the build.
#
# Environment:
#   AUDIT_FETCH_TIMEOUT  seconds allowed for fetching the database (default 120)
set -uo pipefail

cd "$(dirname "$0")/.."

cargo_bin="${CARGO_HOME:-${HOME:-/root}/.cargo}/bin"
case ":$PATH:" in
*":$cargo_bin:"*) ;;
*) export PATH="$cargo_bin:$PATH" ;;
esac

if ! cargo deny --version >/dev/null 2>&1; then
    echo "audit: cargo-deny is missing: cargo install cargo-deny --locked (a few minutes)" >&2
    if ! cargo install cargo-deny --locked; then
        echo "audit: could not install cargo-deny: the audit did NOT run" >&2
        exit 2
    fi
fi

checks=(advisories bans licenses sources)
if ! timeout "${AUDIT_FETCH_TIMEOUT:-120}" cargo deny fetch db; then
    echo >&2
    echo "audit: the RustSec advisory database (https://github.com/rustsec/advisory-db)" >&2
    echo "audit: could not be fetched from here: advisories are NOT checked." >&2
    echo "audit: running bans, licenses and sources only. Run this script where" >&2
    echo "audit: github.com is reachable for the full audit." >&2
    echo >&2
    checks=(bans licenses sources)
fi

if cargo deny check --hide-inclusion-graph "${checks[@]}"; then
    echo "audit: ok (${checks[*]})"
    exit 0
fi
echo "audit: findings above (${checks[*]})" >&2
exit 1
