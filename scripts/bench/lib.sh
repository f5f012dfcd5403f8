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
