#!/usr/bin/env bash
# Install everything the server, its tests and the demo need. Idempotent and fast when
# nothing changed: each step is skipped when what it would produce is already there.
#
#   1. Debian packages: chromium (browser tests) and coturn (TURN relay for every media test)
#   2. .venv with python3 (>= 3.11) and `pip install -e '.[test]'` (re-run only when
#      pyproject.toml changed, tracked by a stamp file inside .venv)
#   3. `npm ci` in web/ when web/package-lock.json exists (re-run only when the lockfile
#      changed, tracked by a stamp file inside web/node_modules)
#
# Works from a fresh clone as root (CI) or as a user with sudo.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT="$(pwd)"

log() { printf '[setup] %s\n' "$*" >&2; }

# One setup at a time per checkout (several `./run.sh` may start together).
if command -v flock >/dev/null 2>&1; then
    lock="${TMPDIR:-/tmp}/mtm-setup-$(printf '%s' "$ROOT" | sha256sum | cut -c1-16).lock"
    exec 9>"$lock"
    flock 9
fi

hash_of() { sha256sum "$1" | cut -d' ' -f1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    else
        sudo "$@"
    fi
}

# --- 1. Debian packages -------------------------------------------------------------
apt_packages=()
[ -x /usr/bin/chromium ] || apt_packages+=(chromium)
[ -x /usr/bin/turnserver ] || apt_packages+=(coturn)
if [ "${#apt_packages[@]}" -gt 0 ]; then
    log "installing Debian packages: ${apt_packages[*]}"
    export DEBIAN_FRONTEND=noninteractive
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${apt_packages[@]}"
fi

# --- 2. Python virtual environment -------------------------------------------------
PYTHON="${PYTHON:-python3}"
VENV="$ROOT/.venv"
if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        log "error: $PYTHON is $("$PYTHON" --version 2>&1); Python >= 3.11 is required"
        exit 1
    fi
    log "creating $VENV with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv "$VENV"
fi

py_stamp="$VENV/.mtm-pyproject.sha256"
py_hash="$(hash_of pyproject.toml)"
if [ ! -f "$py_stamp" ] || [ "$(cat "$py_stamp")" != "$py_hash" ] \
    || [ ! -x "$VENV/bin/mtm-consult" ]; then
    log "installing the project into .venv (pip install -e '.[test]')"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e '.[test]'
    printf '%s\n' "$py_hash" >"$py_stamp"
fi

# --- 3. Browser-side JavaScript dependencies ------------------------------------------
if [ -f web/package-lock.json ]; then
    npm_stamp="web/node_modules/.mtm-package-lock.sha256"
    npm_hash="$(hash_of web/package-lock.json)"
    if [ ! -f "$npm_stamp" ] || [ "$(cat "$npm_stamp")" != "$npm_hash" ]; then
        if ! command -v npm >/dev/null 2>&1; then
            log "installing Debian package: npm"
            as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
                --no-install-recommends npm
        fi
        log "installing web/ dependencies (npm ci)"
        (cd web && npm ci --no-audit --no-fund --loglevel=error)
        printf '%s\n' "$npm_hash" >"$npm_stamp"
    fi
fi
