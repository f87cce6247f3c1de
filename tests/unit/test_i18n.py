"""Which language a page gets (server/i18n.py), and the catalogues it reads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from server.i18n import LANGUAGES, Catalogue, from_accept_language, offered

MESSAGES = Path(__file__).resolve().parents[2] / "web" / "static" / "messages"
CALL = Path(__file__).resolve().parents[2] / "web" / "templates" / "call.html"


@pytest.mark.parametrize(
    ("value", "language"),
    [("es", "es"), ("es-MX", "es"), ("ES", "es"), ("en_US", "en"), ("fr", None), ("", None),
     (None, None), ("<script>", None), ("e" * 5000, None)],
)  # fmt: skip
def test_only_offered_languages_are_taken(value: str | None, language: str | None) -> None:
    assert offered(value) == language


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("es-ES,es;q=0.9,en;q=0.8", "es"),
        ("fr-FR,fr;q=0.9,es;q=0.5,en;q=0.4", "es"),
        ("en;q=0.2, es;q=0.7", "es"),
        ("de, fr", None),
        ("es;q=0, en", "en"),
        ("es;q=abc, en;q=0.1", "en"),
        ("", None),
    ],
)
def test_the_browsers_preference_is_honoured(header: str, language: str | None) -> None:
    assert from_accept_language(header) == language


def test_every_language_has_every_message_and_the_same_placeholders() -> None:
    catalogues = {lang: json.loads((MESSAGES / f"{lang}.json").read_text()) for lang in LANGUAGES}
    english = catalogues["en"]
    for lang, messages in catalogues.items():
        assert messages.keys() == english.keys(), lang
        for key, text in messages.items():
            assert re.findall(r"\{(\w+)\}", text) == re.findall(r"\{(\w+)\}", english[key]), key
            assert "<" not in text, f"{lang} {key}: markup in a message"


def test_the_translator_fills_in_and_refuses_unknown_keys() -> None:
    t = Catalogue.load(MESSAGES).translator("es")
    assert t("control.join-button") == "Unirse"
    assert t("prejoin.lead", role="Paciente").startswith("Se une como Paciente.")
    with pytest.raises(KeyError):
        t("no.such.message")


TEMPLATES = CALL.parent
# The brand is the same in every language.
BRAND = re.compile(r"\bMTM Consult\b")


def own_words(template: str) -> list[str]:
    """The words a template writes itself, outside `{{ }}`, `{% %}`, `{# #}`, `<script>` and
    `<style>`: in its text and in the attributes people read (the brand apart)."""
    html = re.sub(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", "", template, flags=re.S)
    html = re.sub(r"<(script|style)\b.*?</\1>", "", html, flags=re.S | re.I)
    found = []
    for attribute in ("aria-label", "placeholder", "title", "alt"):
        for value in re.findall(rf'\s{attribute}\s*=\s*"([^"]*)"', html):
            found += [f"{attribute}: {word}" for word in re.findall(r"[A-Za-zÀ-ÿ]{2,}", value)]
    text = BRAND.sub(" ", re.sub(r"<[^>]*>", " ", html))
    return found + re.findall(r"[A-Za-zÀ-ÿ]{2,}", text)


def test_the_scan_finds_text_and_read_attributes_only() -> None:
    template = """<title>{% block title %}{{ t("x") }} · MTM Consult{% endblock %}</title>
      <p class="card__eyebrow" data-testid="a">MTM Consult · {{ t("y") }}</p>
      <button aria-label="Close" title="{{ t('z') }}">{# Note: a comment #}Send</button>
      <script>const words = "Not shown";</script><img alt="A photo" src="/x.png">"""
    assert own_words(template) == ["aria-label: Close", "alt: photo", "Send"]


@pytest.mark.parametrize("template", ["call.html", "error.html", "record.html"])
def test_the_patients_pages_hold_no_words_of_their_own(template: str) -> None:
    """Every word of the pages a patient sees comes from the catalogue (or is data)."""
    assert own_words((TEMPLATES / template).read_text()) == [], template


STATIC = Path(__file__).resolve().parents[2] / "web" / "static"
# Its words are for the embedding page's developer (docs/embed.md), never shown to people.
DEVELOPER_FACING = {"embed-bridge.js"}
# Key names compared with KeyboardEvent.key: not words anyone reads.
KEY_NAMES = {"Enter", "Escape", "Tab", "Space", "Home", "End", "Backspace", "Delete"}


def sentences_of(source: str) -> list[str]:
    """The string literals in a JavaScript module that read as words to a person.

    A word a person reads starts with a capital letter ("Edit", "Someone is waiting",
    `${name} was let in.`), where class lists, event names and Socket.IO's reasons are lower
    case. A developer's error (`new Error(...)`, `console.*(...)`) may stay English; one that
    is shown to people is given the catalogue's words where it is shown."""
    source = re.sub(r"/\*.*?\*/", "", source, flags=re.S)  # comments, JSDoc included
    source = re.sub(r"^\s*//.*$|\s//.*$", "", source, flags=re.M)
    source = re.sub(
        r"(?:new\s+\w*Error|console\.\w+)\(\s*(?:\"(?:[^\"\\\n]|\\.)*\"|`(?:[^`\\]|\\.)*`)",
        "",
        source,
    )
    literals = re.findall(
        r"\"((?:[^\"\\\n]|\\.)*)\"|'((?:[^'\\\n]|\\.)*)'|`((?:[^`\\]|\\.)*)`", source
    )
    found = []
    for parts in literals:
        literal = next((part for part in parts if part), "")
        if literal in KEY_NAMES:
            continue
        own_words = re.sub(r"\$\{[^}]*\}", "", literal)
        read_as = re.sub(r"\$\{[^}]*\}", "Name", literal)
        if re.search(r"[A-Za-z]{2,}", own_words) and re.match(
            r"\s*[A-Z][a-z]+(\s+\S|\W*$)", read_as
        ):
            found.append(literal)
    return found


def test_the_scan_finds_words_and_passes_over_code() -> None:
    source = """
      // Comment: Not a message.
      el.textContent = "Save";
      el.title = `${name} was let in.`;
      el.className = "mp-row mp-row--open";
      socket.on("connect_error", () => {});
      if (event.key === "Enter") send();
      throw new Error("Medication panel: settings.may is missing.");
      label = `${who} (${name})`;
      other = 'Someone';
    """
    assert sentences_of(source) == ["Save", "${name} was let in.", "Someone"]


MODULES = sorted(path.name for path in STATIC.glob("*.js") if path.name not in DEVELOPER_FACING)


@pytest.mark.parametrize("module", MODULES)
def test_no_module_holds_words_of_its_own(module: str) -> None:
    """Every word the client shows comes from the catalogue (web/static/messages)."""
    assert sentences_of((STATIC / module).read_text()) == [], module
