#!/usr/bin/env bash
# Regenerate the hash-pinned locks in requirements/ from pyproject.toml (`./run.sh lock`).
# Run it after changing a dependency in pyproject.toml, and commit what changed. Versions
# already locked stay as they are unless pyproject.toml excludes them;
# `./run.sh lock --upgrade` moves everything to the newest allowed versions.
#
#   requirements/runtime.txt  what the server needs to run (+ the setuptools build backend)
#   requirements/test.txt     runtime + [test]: pytest, pytest-asyncio, playwright, hypothesis
#   requirements/lint.txt     runtime + [lint]: ruff, mypy, types-PyYAML
#
# Each lock is complete on its own (scripts/setup.sh installs exactly one per profile) and
# pins every package shared with runtime.txt (and lint with test.txt) to the same version,
# so installing several profiles into one .venv never changes a version back and forth.
# Universal resolution: one lock serves every platform and every Python >= 3.11.
set -euo pipefail

cd "$(dirname "$0")/.."

UV_VERSION=0.13.8
TOOLS=".venv-tools"
log() { printf '[lock] %s\n' "$*" >&2; }

if [ ! -x "$TOOLS/bin/uv" ] || [ "$("$TOOLS/bin/uv" --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
    log "installing uv $UV_VERSION into $TOOLS"
    python3 -m venv "$TOOLS"
    "$TOOLS/bin/python" -m pip install -q --disable-pip-version-check "uv==$UV_VERSION"
fi

compile() {
    local output="$1"
    shift
    log "writing $output"
    "$TOOLS/bin/uv" pip compile --quiet --universal --python-version 3.11 --generate-hashes \
        --custom-compile-command "./run.sh lock" -o "$output" "$@"
}

compile requirements/runtime.txt "$@" pyproject.toml requirements/build.in
compile requirements/test.txt "$@" pyproject.toml requirements/build.in --extra test \
    -c requirements/runtime.txt
compile requirements/lint.txt "$@" pyproject.toml requirements/build.in --extra lint \
    -c requirements/runtime.txt -c requirements/test.txt
