#!/usr/bin/env bash
# Install what one use of the project needs, and nothing more. Idempotent and fast when
# nothing changed: each step is skipped when what it would produce is already there.
#
#   scripts/setup.sh demo    the server alone: Debian Pango and a font (WeasyPrint's PDF
#                            documents), .venv from requirements/runtime.txt, web/ npm ci
#                            without devDependencies
#   scripts/setup.sh test    + Debian chromium, coturn, nginx, redis-server and
#                            poppler-utils (pdftotext reads the PDFs back),
#                            requirements/test.txt (pytest, playwright, hypothesis,
#                            fhir.resources), web/ npm ci with devDependencies
#   scripts/setup.sh lint    .venv from requirements/lint.txt (ruff, mypy), web/ npm ci with
#                            devDependencies (TypeScript, ESLint); no Debian packages
#                            (npm itself only where it is missing)
#   scripts/setup.sh bench   as test (bench/run.py adds its own Node and py-spy tools)
#   scripts/setup.sh --plan PROFILE   print what PROFILE installs, install nothing
#
# Steps:
#   1. Debian packages of the profile (demo, test, bench: libpango-1.0-0, libpangoft2-1.0-0
#      and fonts-dejavu-core, which WeasyPrint loads to render PDFs; test, bench: chromium
#      for browser tests, coturn as the TURN relay of every media test, nginx in front of
#      several instances and redis-server for private Redis servers the tests start, stop
#      and restart (the packages' own services are not started), poppler-utils)
#   2. .venv with python3 (>= 3.11); pip itself from requirements/pip.txt, then
#      `pip install --require-hashes -r <the profile's lock>`,
#      then `pip install --no-deps --no-build-isolation -e .`: every package, the build
#      backend included, is the version and the file (sha256) the lock names. Re-run only
#      when the lock or pyproject.toml changed (a stamp file per profile inside .venv).
#      Locks are regenerated with `./run.sh lock` (scripts/lock.sh).
#   3. `npm ci` in web/: socket.io-client and esbuild for the call page (every profile); test, lint and
#      bench also get web/package.json's devDependencies (TypeScript and ESLint for
#      `./run.sh lint`, the JS tests' tools), demo gets `--omit=dev`. Re-run only when
#      web/package-lock.json changed or the profile needs the devDependencies that are not
#      there yet (a stamp file inside web/node_modules)
#   4. The call page's bundle (server/bundle.py; demo, test, bench): built by esbuild into
#      web/build/<digest of the sources>/, skipped when that bundle is there
#
# Works from a fresh clone as root (CI) or as a user with sudo.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT="$(pwd)"

log() { printf '[setup] %s\n' "$*" >&2; }

plan=0
if [ "${1:-}" = "--plan" ]; then
    plan=1
    shift
fi
profile="${1:-test}"
# What WeasyPrint needs at run time (the server renders PDF documents).
pdf=(libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core)
case "$profile" in
    demo) lock=requirements/runtime.txt debian=("${pdf[@]}") web=runtime ;;
    test | bench) lock=requirements/test.txt debian=(chromium coturn nginx redis-server "${pdf[@]}" poppler-utils) web=dev ;;
    lint) lock=requirements/lint.txt debian=() web=dev ;;
    *)
        log "unknown profile: $profile (demo, test, lint or bench)"
        exit 2
        ;;
esac

if [ "$plan" = 1 ]; then
    printf 'lock: %s\ndebian: %s\nweb: %s\n' "$lock" "${debian[*]}" "$web"
    exit 0
fi

# One setup at a time per checkout (several `./run.sh` may start together).
if command -v flock >/dev/null 2>&1; then
    lock_file="${TMPDIR:-/tmp}/mtm-setup-$(printf '%s' "$ROOT" | sha256sum | cut -c1-16).lock"
    exec 9>"$lock_file"
    flock 9
fi

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    else
        sudo "$@"
    fi
}

apt_install() {
    log "installing Debian packages: $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    # A policy-rc.d that answers 101 keeps package scripts from starting services (nginx,
    # redis-server) during the install: tests start their own, on loopback ports of theirs.
    local policy=/usr/sbin/policy-rc.d added=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
        as_root chmod 755 "$policy"
        added=1
    fi
    local status=0
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "$@" || status=$?
    if [ "$added" = 1 ]; then
        as_root rm -f "$policy"
    fi
    return "$status"
}

# --- 1. Debian packages -------------------------------------------------------------
missing=()
for package in "${debian[@]}"; do
    case "$package" in
        chromium) [ -x /usr/bin/chromium ] || missing+=(chromium) ;;
        coturn) [ -x /usr/bin/turnserver ] || missing+=(coturn) ;;
        nginx) [ -x /usr/sbin/nginx ] || missing+=(nginx) ;;
        redis-server) [ -x /usr/bin/redis-server ] || missing+=(redis-server) ;;
        poppler-utils) [ -x /usr/bin/pdftotext ] || missing+=(poppler-utils) ;;
        *) dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" \
            || missing+=("$package") ;;
    esac
done
if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
fi

# --- 2. Python virtual environment -------------------------------------------------
PYTHON="${PYTHON:-python3}"
VENV="${MTM_VENV:-$ROOT/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        log "error: $PYTHON is $("$PYTHON" --version 2>&1); Python >= 3.11 is required"
        exit 1
    fi
    log "creating $VENV with $("$PYTHON" --version 2>&1)"
    "$PYTHON" -m venv "$VENV"
fi

# The installer first, from its own hash-pinned lock (requirements/pip.txt says why).
pip_wanted="$(sed -n 's/^pip==\([^ ]*\).*/\1/p' requirements/pip.txt)"
if [ "$("$VENV/bin/python" -m pip --version | cut -d' ' -f2)" != "$pip_wanted" ]; then
    log "installing pip $pip_wanted into $VENV (requirements/pip.txt)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --require-hashes \
        -r requirements/pip.txt
fi

py_stamp="$VENV/.mtm-$profile.sha256"
py_hash="$(hash_of "$lock" pyproject.toml requirements/pip.txt)"
if [ ! -f "$py_stamp" ] || [ "$(cat "$py_stamp")" != "$py_hash" ] \
    || [ ! -x "$VENV/bin/mtm-consult" ]; then
    log "installing $lock into $VENV (pip install --require-hashes), then the project"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --require-hashes -r "$lock"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
        --no-build-isolation -e .
    printf '%s\n' "$py_hash" >"$py_stamp"
fi

# --- 3. Browser-side JavaScript dependencies ------------------------------------------
# The stamp holds the lock's hash and what was installed ("runtime" or "dev"); a dev install
# also serves a profile that needs only the runtime packages.
if [ -f web/package-lock.json ]; then
    npm_stamp="web/node_modules/.mtm-package-lock.sha256"
    npm_hash="$(hash_of web/package-lock.json)"
    installed="$(cat "$npm_stamp" 2>/dev/null || true)"
    if [ "$installed" != "$npm_hash dev" ] && { [ "$web" = dev ] || [ "$installed" != "$npm_hash runtime" ]; }; then
        if ! command -v npm >/dev/null 2>&1; then
            apt_install npm
        fi
        if [ "$web" = dev ]; then
            log "installing web/ dependencies with devDependencies (npm ci)"
            (cd web && npm ci --no-audit --no-fund --loglevel=error)
        else
            log "installing web/ dependencies (npm ci --omit=dev)"
            (cd web && npm ci --omit=dev --no-audit --no-fund --loglevel=error)
        fi
        printf '%s %s\n' "$npm_hash" "$web" >"$npm_stamp"
    fi
fi

# --- 4. The call page's bundle ---------------------------------------------------------
# A server also builds it when it starts on changed sources; building it here means a
# deployed server never has to.
if [ "$profile" != lint ]; then
    .venv/bin/python -m server.bundle
fi
