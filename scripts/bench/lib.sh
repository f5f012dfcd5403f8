# Shared by the benchmarks: build once, time commands with /usr/bin/time.

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
RUNS=${RUNS:-5}

if [ ! -x /usr/bin/time ]; then
    apt-get update -qq && apt-get install -y -qq time >/dev/null
fi
cargo build --release --quiet
SLUICE=${CARGO_TARGET_DIR:-$ROOT/target}/release/sluice
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export SLUICE_DATA_DIR=$WORK/data

# measure CMD...: runs it once; prints "WALL_SECONDS PEAK_RSS_KB" of its
# largest process.
measure() {
    /usr/bin/time -f '%e %M' -o "$WORK/time" "$@" >/dev/null 2>"$WORK/stderr" || {
        cat "$WORK/stderr" >&2
        return 1
    }
    cat "$WORK/time"
}

# median of the numbers on stdin
median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

# "median (min-max)" of the numbers given
stats() {
    printf '%s (%s-%s)' "$(printf '%s\n' "$@" | median)" \
        "$(printf '%s\n' "$@" | sort -g | head -n 1)" "$(printf '%s\n' "$@" | sort -g | tail -n 1)"
}

# b / a to two places
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b / a}'; }

# Sets SLING to Sling's binary, from PyPI (`sling-linux-amd64` carries it)
# into a virtualenv of its own, SLING_VENV (default target/bench/sling),
# installed once; empty, with a message, when PyPI cannot be reached.
find_sling() {
    SLING_VENV=${SLING_VENV:-$ROOT/target/bench/sling}
    local bin='*sling_linux_amd64/bin/sling-linux-amd64'
    SLING=$(find "$SLING_VENV" -path "$bin" -type f 2>/dev/null | head -n 1 || true)
    if [ -z "$SLING" ] && python3 -m venv "$SLING_VENV" >/dev/null 2>&1 &&
        "$SLING_VENV/bin/pip" install -q sling-linux-amd64 >/dev/null 2>&1; then
        SLING=$(find "$SLING_VENV" -path "$bin" -type f 2>/dev/null | head -n 1 || true)
    fi
    [ -n "$SLING" ] || echo "Sling skipped: cannot install sling-linux-amd64 from PyPI." >&2
    export SLING_HOME_DIR=$WORK/sling SLING_DISABLE_TELEMETRY=true
}
