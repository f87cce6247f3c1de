"""The documentation points only inside the repository, and the tests it names exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
TEST_REFERENCE = re.compile(r"(tests/[\w/]+\.py)(?:::(\w+))?")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_links_resolve_to_files_inside_the_repository(document: Path) -> None:
    for target in LINK.findall(document.read_text()):
        if target.startswith(("http://", "https://", "mailto:", "#")):
            continue
        resolved = (document.parent / target.split("#")[0]).resolve()
        assert resolved.is_relative_to(ROOT), f"{document.name} links outside: {target}"
        assert resolved.exists(), f"{document.name} links to a missing file: {target}"


@pytest.mark.parametrize(
    "document", [ROOT / "docs" / "deploy.md", ROOT / "docs" / "architecture.md"], ids=str
)
def test_every_test_a_document_names_exists(document: Path) -> None:
    text = document.read_text()
    named = TEST_REFERENCE.findall(text) + [
        ("", name) for name in re.findall(r"`(test_\w+)`", text)
    ]
    assert named
    sources = {path: path.read_text() for path in (ROOT / "tests").rglob("test_*.py")}
    for path, name in named:
        if path:
            assert (ROOT / path).exists(), f"{document.name} names a missing file {path}"
        if name:
            where = [ROOT / path] if path else list(sources)
            assert any(re.search(rf"def {name}\(", sources.get(file, "")) for file in where), (
                f"{document.name} names a missing test {name}"
            )
