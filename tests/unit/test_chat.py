"""What a chat message may hold (models/chat.py)."""

from __future__ import annotations

import pytest

from models.chat import MAX_LENGTH, clean_text
from models.errors import Refused


def test_a_message_is_kept_trimmed_with_its_line_breaks() -> None:
    assert clean_text("  Metformin\n500 mg\ttwice a day \n") == "Metformin\n500 mg\ttwice a day"
    assert clean_text("<b>not bold</b>") == "<b>not bold</b>", "kept as text, never markup"
    assert clean_text("x" * MAX_LENGTH) == "x" * MAX_LENGTH


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        (" \n\t ", "empty"),
        ("x" * (MAX_LENGTH + 1), "at most 1000"),
        ("bell\x07", "control characters"),
        ("nul\x00", "NUL"),
        ("half \ud800 a pair", "surrogate"),
    ],
)
def test_bad_text_is_refused_with_a_reason(text: str, problem: str) -> None:
    with pytest.raises(Refused) as refused:
        clean_text(text)
    assert refused.value.code == "invalid_payload"
    assert problem in refused.value.message
