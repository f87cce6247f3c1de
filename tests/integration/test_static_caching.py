"""The call page's scripts: bundled, versioned, cached for good, and all preloaded at once."""

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from tests.conftest import RunningServer

YEAR_IMMUTABLE = "public, max-age=31536000, immutable"
# A module's dependencies as the browser sees them: `from "…"`, `import "…"`, `import("…")`.
IMPORT = re.compile(r"""(?:\bfrom\s*|\bimport\s*\(?\s*)["']([^"']+\.js)["']""")
COMMENT = re.compile(r"/\*.*?\*/|^\s*//.*?$", re.DOTALL | re.MULTILINE)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.preloads: list[str] = []
        self.scripts: list[str] = []
        self.stylesheets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        given = dict(attrs)
        if tag == "link" and given.get("rel") == "modulepreload":
            self.preloads.append(str(given["href"]))
        elif tag == "link" and given.get("rel") == "stylesheet":
            self.stylesheets.append(str(given["href"]))
        elif tag == "script" and given.get("type") == "module" and given.get("src"):
            self.scripts.append(str(given["src"]))


async def _call_page(server: RunningServer) -> _Links:
    consult = await server.create_consult()
    async with server.http.get(consult["links"]["pharmacist"]) as page:
        assert page.status == 200
        links = _Links()
        links.feed(await page.text())
    return links


async def test_every_module_of_the_call_is_preloaded_and_cached_for_good(
    server: RunningServer,
) -> None:
    links = await _call_page(server)
    assert len(links.scripts) == 1
    entry = links.scripts[0]
    assert re.fullmatch(r"/static/v/[0-9a-f]{16}/bundle/call\.js", entry)
    preloaded = set(links.preloads)
    # Walk the import graph the browser would walk, from what it is served.
    seen: set[str] = set()
    pending = [entry]
    while pending:
        address = pending.pop()
        if address in seen:
            continue
        seen.add(address)
        async with server.http.get(f"{server.base_url}{address}") as module:
            assert module.status == 200, address
            assert "javascript" in module.content_type
            assert module.headers["Cache-Control"] == YEAR_IMMUTABLE, address
            source = await module.text()
        for specifier in IMPORT.findall(COMMENT.sub("", source)):
            dependency = urlsplit(urljoin(f"{server.base_url}{address}", specifier)).path
            assert dependency in preloaded, f"{address} imports {dependency}, not preloaded"
            pending.append(dependency)
    # The entry and the medication panel's chunk (socket.io-client and the mesh are in the
    # entry); nothing preloaded that is not needed.
    names = {path.rsplit("/", 1)[1] for path in seen}
    assert "call.js" in names
    assert any(re.fullmatch(r"panel-\w+\.js", name) for name in names), names
    assert len(seen) <= 4, seen  # a bundle, not the thirty-odd source modules
    assert preloaded == seen - {entry}
    for stylesheet in links.stylesheets:
        async with server.http.get(f"{server.base_url}{stylesheet}") as css:
            assert css.status == 200
            assert css.headers["Cache-Control"] == YEAR_IMMUTABLE


async def test_other_versions_and_unversioned_addresses_are_revalidated(
    server: RunningServer,
) -> None:
    links = await _call_page(server)
    current = links.scripts[0]
    stale = re.sub(r"/v/[0-9a-f]+/", "/v/0000000000000000/", current)
    for address in (stale, "/static/call.js", "/static/style.css"):
        async with server.http.get(f"{server.base_url}{address}") as script:
            assert script.status == 200, address
            assert script.headers["Cache-Control"] == "no-cache", address
    async with server.http.get(f"{server.base_url}/static/v/{'0' * 16}/no-such.js") as missing:
        assert missing.status == 404
