"""Stable ordering keys: a key strictly between any two keys, so inserts and moves never renumber.

Keys are strings over an ordered alphabet compared as plain strings. Ties (two clients
inserting at one spot) are broken by entity id wherever lists are sorted.
"""

from __future__ import annotations

DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_MID = len(DIGITS) // 2


def _digit(key: str, index: int, default: int) -> int:
    return DIGITS.index(key[index]) if index < len(key) else default


def key_between(before: str | None, after: str | None) -> str:
    """A key that sorts after `before` and before `after` (either may be None: an open end)."""
    if before is not None and after is not None and not before < after:
        raise ValueError("`before` must sort before `after`")
    for key in (before, after):
        if key is not None and (not key or any(char not in DIGITS for char in key)):
            raise ValueError(f"not a position key: {key!r}")
        if key is not None and key.endswith(DIGITS[0]):
            raise ValueError(f"not a position key (trailing zero digit): {key!r}")
    low = before or ""
    result = []
    index = 0
    while True:
        low_digit = _digit(low, index, 0)
        high_digit = _digit(after, index, len(DIGITS)) if after is not None else len(DIGITS)
        if high_digit - low_digit > 1:
            result.append(DIGITS[(low_digit + high_digit) // 2])
            return "".join(result)
        # No room at this digit: keep the lower digit and look one place further.
        result.append(DIGITS[low_digit])
        if high_digit > low_digit:
            # From here on only the lower bound constrains us.
            after = None
        index += 1
