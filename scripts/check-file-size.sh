#!/usr/bin/env bash
# Fails when a non-test Rust file in src/ or benches/ is over the line limit
# (issue 11: "no non-test file over 700 lines"), listing every such file.
#
#   scripts/check-file-size.sh          # limit 700
#   MAX_LINES=500 scripts/check-file-size.sh
#
# Test files are exempt: names ending in `tests.rs` or `_test.rs`, and
# anything under a `tests/` directory. A `#[cfg(test)]` module in its own
# file should be named so (for example `equivalence_tests.rs`).
set -euo pipefail

cd "$(dirname "$0")/.."

max=${MAX_LINES:-700}
over=()
while IFS= read -r -d '' file; do
    case "$file" in
    *tests.rs | *_test.rs | */tests/*) continue ;;
    esac
    lines=$(wc -l <"$file")
    if [ "$lines" -gt "$max" ]; then
        over+=("$(printf '%6d  %s' "$lines" "$file")")
    fi
done < <(find src benches -name '*.rs' -type f -print0 2>/dev/null)

if [ "${#over[@]}" -gt 0 ]; then
    echo "non-test files over $max lines (split them by job; see issue 11):"
    printf '%s\n' "${over[@]}" | sort -rn
    exit 1
fi
echo "no non-test file in src/ or benches/ is over $max lines"
