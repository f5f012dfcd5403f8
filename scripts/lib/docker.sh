# shellcheck shell=bash
# A Docker engine for the tests and benchmarks: `source` this file, then
# call `ensure_docker`. It installs Debian's docker.io when dockerd is
# missing, starts dockerd in the background when no engine answers, and
# waits up to 60 s for `docker info`. Idempotent: a running engine is left
# as it is. Returns non-zero (with a message on stderr) when no engine
# could be had.

ensure_docker() {
    if docker info >/dev/null 2>&1; then
        return 0
    fi
    if ! command -v dockerd >/dev/null 2>&1; then
        echo "ensure_docker: installing docker.io" >&2
        if [ "$(id -u)" -ne 0 ]; then
            echo "ensure_docker: dockerd is missing and installing it needs root" >&2
            return 1
        fi
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null || return 1
        apt-get install -y -qq docker.io >/dev/null || return 1
    fi
    # DOCKER_HOST naming an engine elsewhere: starting a local one would not help.
    if [ -n "${DOCKER_HOST:-}" ] && [ "${DOCKER_HOST#unix://}" = "$DOCKER_HOST" ]; then
        echo "ensure_docker: DOCKER_HOST=$DOCKER_HOST does not answer" >&2
        return 1
    fi
    local log="${DOCKERD_LOG:-/tmp/dockerd.log}" waited=0
    until docker info >/dev/null 2>&1; do
        # Started when none runs; one that is still stopping is waited out.
        if ! pgrep -x dockerd >/dev/null 2>&1; then
            echo "ensure_docker: starting dockerd (log: $log)" >&2
            (setsid dockerd >>"$log" 2>&1 &)
        fi
        if [ "$waited" -ge 60 ]; then
            echo "ensure_docker: dockerd did not answer within 60 s; see $log" >&2
            return 1
        fi
        sleep 1
        waited=$((waited + 1))
    done
}
