#!/usr/bin/env bash
# Entry point for people and CI.
#
#   ./run.sh demo [serve args...]   install what the server needs, then run it in demo mode
#   ./run.sh test [pytest args...]  install the server and test tools; the JS unit tests
#                                   (node --test), then pytest
#   ./run.sh lint                   install the lint tools; ruff check, ruff format --check,
#                                   mypy, then tsc --noEmit and ESLint over web/
#   ./run.sh bench [--quick] [BENCHMARK...]  benchmarks against peers; writes docs/benchmarks.md
#   ./run.sh lock [--upgrade]       regenerate the hash-pinned locks in requirements/
#
# Each command installs only what it needs (scripts/setup.sh PROFILE), from the locks.
# Integration tests read MTM_TEST_DATABASE_URL and MTM_TEST_REDIS_URL; the defaults below
# point at the Postgres and Redis that run on this machine (loopback only).
set -euo pipefail

cd "$(dirname "$0")"

usage() {
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

[ "$#" -ge 1 ] || usage
command="$1"
shift

case "$command" in
    demo)
        bash scripts/setup.sh demo
        exec .venv/bin/mtm-consult serve --demo "$@"
        ;;
    test)
        bash scripts/setup.sh test
        export MTM_TEST_DATABASE_URL="${MTM_TEST_DATABASE_URL:-postgresql+asyncpg://postgres@127.0.0.1:5432/test}"
        export MTM_TEST_REDIS_URL="${MTM_TEST_REDIS_URL:-redis://127.0.0.1:6379/0}"
        # The browser client's unit tests first (a second or two): a failure stops here, and
        # pytest's summary stays the last line printed.
        (cd web && node --test test/*.test.js)
        exec .venv/bin/python -m pytest "$@"
        ;;
    lint)
        bash scripts/setup.sh lint
        status=0
        .venv/bin/ruff check . || status=1
        .venv/bin/ruff format --check . || status=1
        .venv/bin/mypy || status=1
        # The browser client: JSDoc types (web/tsconfig.json) and ESLint (web/eslint.config.js).
        (cd web && node_modules/.bin/tsc -p .) || status=1
        (cd web && node_modules/.bin/eslint .) || status=1
        exit "$status"
        ;;
    bench)
        bash scripts/setup.sh bench
        # The capacity benchmark holds ~7,000 sockets (both ends on this machine).
        ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null || true
        exec .venv/bin/python -m bench.run "$@"
        ;;
    lock)
        exec bash scripts/lock.sh "$@"
        ;;
    -h | --help | help)
        usage
        ;;
    *)
        printf 'unknown command: %s\n' "$command" >&2
        usage
        ;;
esac
