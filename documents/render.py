"""HTML of each document, from its content (documents/content.py) and a Jinja2 template.

Autoescape is on for every template, and the templates escape each value explicitly too:
markup typed into any field is shown as text, in the HTML and in the PDF made from it.
The same content always gives the same bytes (no clock, no random ids).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jinja2

from documents.content import PatientSummary, PrescriberLetter

TEMPLATES = Path(__file__).resolve().parent / "templates"


@cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )


def summary_html(summary: PatientSummary) -> str:
    """The patient's copy: cover letter, Medication Action Plan, Personal Medication List."""
    return environment().get_template("summary.html").render(doc=summary)


def letter_html(letter: PrescriberLetter) -> str:
    return environment().get_template("letter.html").render(doc=letter)
