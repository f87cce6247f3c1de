"""The call page's modules bundled by esbuild (installed from npm into web/node_modules).

The sources stay plain ES modules under `web/static/` (tested and type-checked as they
are); the browser gets them bundled: one entry and one chunk for the medication panel,
instead of some thirty files, which a page loading beside two others on one core took
over a second to fetch. `socket.io-client` is bundled from its npm package.

A bundle lives in `web/build/<digest>/`, where the digest covers every file under
`web/static/`, `web/package-lock.json` and the esbuild arguments, so a changed source
always gets a new bundle and an unchanged one reuses it. Setup builds it once
(`python -m server.bundle`); a server starting on sources changed since builds it then
(esbuild takes well under a second), into a directory of its own that it renames into
place, so servers starting together never write over each other's files.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from stat import S_ISDIR

ENTRY = "call.js"
ESBUILD = Path("node_modules/.bin/esbuild")
LOCK_FILE = Path("package-lock.json")
# Bundles of earlier sources kept beside the current one (a server still running an
# older release keeps serving its own).
KEEP = 3
ARGUMENTS = (
    "--bundle",
    "--format=esm",
    "--splitting",
    "--platform=browser",
    "--target=es2022",
    "--minify",
    "--sourcemap",
    "--entry-names=[name]",
    "--chunk-names=[name]-[hash]",
    "--log-level=error",
)


class BundleError(RuntimeError):
    """The bundle could not be built; the message says what to run."""


@dataclass(frozen=True)
class Bundle:
    """`files` maps a name inside the bundle ("call.js", "panel-3F2A….js", maps) to its file."""

    directory: Path
    files: dict[str, Path]

    @property
    def entry(self) -> str:
        return ENTRY


def digest_of_sources(web_dir: Path) -> str:
    digest = hashlib.sha256()
    digest.update("\0".join(ARGUMENTS).encode())
    static = web_dir / "static"
    sources = sorted(path for path in static.rglob("*") if path.is_file())
    lock = web_dir / LOCK_FILE
    for path in [*sources, lock] if lock.is_file() else sources:
        digest.update(path.relative_to(web_dir).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def build(web_dir: Path) -> Bundle:
    """The bundle of the current sources, built now unless it already is (blocking: ~0.1 s
    when it builds; run at start-up, as the static files are hashed then too)."""
    web_dir = web_dir.resolve()
    directory = web_dir / "build" / digest_of_sources(web_dir)
    if not (directory / ENTRY).is_file():
        _esbuild_into(web_dir, directory)
        _prune(directory.parent, keep=directory)
    files = {
        path.relative_to(directory).as_posix(): path
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }
    return Bundle(directory, files)


def _esbuild_into(web_dir: Path, directory: Path) -> None:
    esbuild = web_dir / ESBUILD
    if not esbuild.is_file():
        raise BundleError(
            "esbuild is not installed, so the call page cannot be bundled: "
            "run `npm ci` in web/ (scripts/setup.sh does it)."
        )
    directory.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    try:
        result = subprocess.run(  # noqa: S603 - our own binary and arguments
            [str(esbuild), f"static/{ENTRY}", *ARGUMENTS, f"--outdir={scratch}"],
            cwd=web_dir,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            raise BundleError(f"esbuild could not bundle web/static/{ENTRY}:\n{result.stderr}")
        try:
            scratch.rename(directory)
        except OSError:
            # Another server built the same sources first: theirs is the same bundle.
            if not (directory / ENTRY).is_file():
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _mtime(path: Path) -> float | None:
    """When a directory was last changed; None if it is not (or no longer) a directory."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_mtime if S_ISDIR(stat.st_mode) else None


def _prune(builds: Path, keep: Path) -> None:
    """Remove all but the newest bundles, and scratch directories a crash left behind."""
    # Another server starting at the same moment renames or removes its own directories
    # meanwhile: one gone by the time it is looked at is simply not there.
    others = {
        path: mtime
        for path in builds.iterdir()
        if path != keep and (mtime := _mtime(path)) is not None
    }
    bundles = sorted(
        (path for path in others if not path.name.startswith(".")),
        key=lambda path: others[path],
        reverse=True,
    )
    # A scratch directory younger than that may be another server's build in progress.
    abandoned = [
        path
        for path, mtime in others.items()
        if path.name.startswith(".") and mtime < time.time() - 600
    ]
    for old in [*bundles[KEEP - 1 :], *abandoned]:
        shutil.rmtree(old, ignore_errors=True)


def main() -> int:
    web_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent.parent / "web"
    try:
        bundle = build(web_dir)
    except BundleError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"bundled web/static/{ENTRY} into {bundle.directory}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
