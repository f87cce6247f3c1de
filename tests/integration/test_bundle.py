"""server/bundle.py: the call page bundled by the real esbuild, rebuilt when a source changes."""

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from server import bundle

WEB = Path(__file__).resolve().parents[2] / "web"


@pytest.fixture
def web_copy(tmp_path: Path) -> Path:
    """A web/ of our own: its static sources copied, node_modules linked (esbuild, socket.io)."""
    copy = tmp_path / "web"
    shutil.copytree(WEB / "static", copy / "static")
    shutil.copy(WEB / "package-lock.json", copy / "package-lock.json")
    (copy / "node_modules").symlink_to(WEB / "node_modules")
    return copy


def test_the_bundle_holds_the_call_and_socket_io_and_is_reused(web_copy: Path) -> None:
    first = bundle.build(web_copy)
    entry = first.files["call.js"].read_text(encoding="utf-8")
    # socket.io-client comes from its npm package (its default path, its protocol's
    # query parameter), not from a file of ours.
    assert '"/socket.io"' in entry
    assert "EIO" in entry
    assert any(name.startswith("panel-") and name.endswith(".js") for name in first.files)
    assert first.directory.parent == web_copy / "build"
    built_at = first.files["call.js"].stat().st_mtime_ns
    again = bundle.build(web_copy)
    assert again == first
    assert again.files["call.js"].stat().st_mtime_ns == built_at  # not rebuilt


def test_a_changed_source_gets_a_new_bundle(web_copy: Path) -> None:
    before = bundle.build(web_copy)
    peers = web_copy / "static" / "peers.js"
    peers.write_text(
        peers.read_text(encoding="utf-8") + '\nconsole.debug("bundle-test-marker");\n',
        encoding="utf-8",
    )
    after = bundle.build(web_copy)
    assert after.directory != before.directory
    assert "bundle-test-marker" in after.files["call.js"].read_text(encoding="utf-8")
    assert "bundle-test-marker" not in before.files["call.js"].read_text(encoding="utf-8")


def test_servers_starting_together_share_one_bundle(web_copy: Path) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        bundles = list(pool.map(lambda _: bundle.build(web_copy), range(4)))
    assert all(built == bundles[0] for built in bundles)
    assert [path.name for path in (web_copy / "build").iterdir()] == [bundles[0].directory.name]
    assert bundles[0].files["call.js"].stat().st_size > 10_000


def test_old_bundles_are_pruned(web_copy: Path) -> None:
    lobby = web_copy / "static" / "lobby.js"
    source = lobby.read_text(encoding="utf-8")
    built = []
    for n in range(bundle.KEEP + 2):
        lobby.write_text(f"{source}\n// revision {n}\n", encoding="utf-8")
        built.append(bundle.build(web_copy).directory)
    left = sorted(path for path in (web_copy / "build").iterdir())
    assert len(left) == bundle.KEEP
    assert built[-1] in left


def test_a_source_esbuild_cannot_parse_is_a_clear_error(web_copy: Path) -> None:
    (web_copy / "static" / "peers.js").write_text("export const = ;\n", encoding="utf-8")
    with pytest.raises(bundle.BundleError, match=r"could not bundle web/static/call\.js"):
        bundle.build(web_copy)
    # Nothing half-built is left where a server would take it for a bundle.
    assert [path.name for path in (web_copy / "build").iterdir()] == []


def test_without_esbuild_the_error_says_what_to_run(web_copy: Path) -> None:
    (web_copy / "node_modules").unlink()
    with pytest.raises(bundle.BundleError, match=r"run `npm ci` in web/"):
        bundle.build(web_copy)
