"""The browser's static files under versioned, cacheable URLs.

Every file of `web/static/` (and the call page's bundle, server/bundle.py, under
`bundle/`) is also served under `/static/v/<version>/<path>`, where `<version>` is a
content hash of all of them taken when the app starts. A page names its scripts and
stylesheets by those URLs and preloads the whole module graph of its entry (`<link
rel="modulepreload">`), so the browser fetches every chunk at once instead of discovering
each import only when its parent arrives, and keeps them across visits: a versioned
response is `immutable` for a year. The modules import each other by relative paths, so
one versioned entry pulls in the versions of the same release; a new release has a new
directory.

A request for another version than the current one (a page opened before a deploy that
now loads `panel.js`) gets today's file, revalidated on every use (`no-cache`), so an old
address never pins new content. The unversioned `/static/...` addresses stay, revalidated.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from aiohttp import web

# Kept in the browser for a year and never revalidated: the address changes with the content.
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
VERSIONED_PREFIX = "/static/v/"
# `import … from "./x.js"`, `export … from "./x.js"`, `import "./x.js"` and `import("./x.js")`:
# how our modules and esbuild's chunks name their dependencies.
_IMPORT = re.compile(
    r"""(?:^|[;\s])(?:import|export)\s*(?:[\w*{},\s$]+?\s*from\s*)?["']([^"']+)["']"""
    r"""|\bimport\(\s*["']([^"']+)["']\s*\)""",
    re.MULTILINE,
)
_COMMENTS = re.compile(r"/\*.*?\*/|^\s*//.*?$", re.DOTALL | re.MULTILINE)
_SUFFIXES = {".js", ".css", ".ts"}


def imports_of(source: str) -> list[str]:
    """The module specifiers a module's source imports, statically or with `import()`."""
    # Block comments too: JSDoc types name modules (`import("./panel-types.js").Entity`)
    # that the browser never loads.
    without_comments = _COMMENTS.sub("", source)
    return [static or dynamic for static, dynamic in _IMPORT.findall(without_comments)]


@dataclass
class StaticAssets:
    """What `/static/` serves: `files` maps a path under /static/ to the file on disk."""

    files: dict[str, Path]
    version: str = field(init=False)
    # Every call page names the same modules: the graph is walked once per entry, not
    # on each page (the files are those of `version`, fixed at start-up).
    _preloads: dict[str, list[str]] = field(init=False, default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        digest = hashlib.sha256()
        for name in sorted(self.files):
            digest.update(name.encode())
            digest.update(b"\0")
            file = self.files[name]
            digest.update(file.read_bytes() if file.is_file() else b"(missing)")
            digest.update(b"\0")
        self.version = digest.hexdigest()[:16]

    @classmethod
    def scan(cls, static_dir: Path, extra: dict[str, Path]) -> StaticAssets:
        """The scripts and stylesheets of `static_dir` (recursively), plus `extra` files."""
        files = {
            path.relative_to(static_dir).as_posix(): path
            for path in static_dir.rglob("*")
            if path.is_file() and path.suffix in _SUFFIXES
        }
        return cls({**files, **extra})

    def url(self, name: str) -> str:
        """The versioned address of `name` (a path under /static/, e.g. "call.js")."""
        if name not in self.files:
            raise KeyError(f"no static file {name!r}")
        return f"{VERSIONED_PREFIX}{self.version}/{name}"

    def module_graph(self, entry: str) -> list[str]:
        """`entry` and every module it imports, directly or not (dynamic imports too),
        as paths under /static/, in the order found."""
        found: list[str] = []
        pending = [entry]
        while pending:
            name = pending.pop(0)
            if name in found or name not in self.files:
                continue
            found.append(name)
            file = self.files[name]
            if file.suffix != ".js" or not file.is_file():
                continue
            for specifier in imports_of(file.read_text(encoding="utf-8")):
                resolved = _resolve(name, specifier)
                if resolved is not None:
                    pending.append(resolved)
        return found

    def preloads(self, entry: str) -> list[str]:
        """Versioned addresses of every module `entry` needs, the entry itself excluded."""
        if entry not in self._preloads:
            self._preloads[entry] = [self.url(name) for name in self.module_graph(entry)[1:]]
        return self._preloads[entry]


def _resolve(importer: str, specifier: str) -> str | None:
    """A specifier relative to `importer` (or absolute under /static/) as a path under
    /static/; None for anything else (a bare package name, another origin)."""
    if specifier.startswith("/static/"):
        return specifier.removeprefix("/static/")
    if not specifier.startswith(("./", "../")):
        return None
    parts: list[str] = []
    for part in (PurePosixPath(importer).parent / specifier).parts:
        if part == "..":
            if not parts:
                return None
            parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


def add_routes(app: web.Application, assets: StaticAssets) -> None:
    """`/static/v/<version>/<path>`."""

    async def versioned(request: web.Request) -> web.StreamResponse:
        name = request.match_info["path"]
        file = assets.files.get(name)
        if file is None or not await asyncio.to_thread(file.is_file):
            raise web.HTTPNotFound()
        current = request.match_info["version"] == assets.version
        return web.FileResponse(
            file, headers={"Cache-Control": IMMUTABLE if current else REVALIDATE}
        )

    app.router.add_get(VERSIONED_PREFIX + "{version}/{path:.+}", versioned)
    app.on_response_prepare.append(_revalidate_unversioned)


async def _revalidate_unversioned(request: web.Request, response: web.StreamResponse) -> None:
    """An unversioned /static/ address is revalidated on every use (ETag/Last-Modified)."""
    if (
        request.path.startswith("/static/")
        and not request.path.startswith(VERSIONED_PREFIX)
        and "Cache-Control" not in response.headers
    ):
        response.headers["Cache-Control"] = REVALIDATE
