"""Plain text as kaiops accepts it in names, URIs and payloads: printable, no control or look-alike characters.
"""

from __future__ import annotations

import unicodedata


def _describe_char(ch: str) -> str:
    """``'\\uff11' (U+FF11 FULLWIDTH DIGIT ONE)`` for a fullwidth one."""
    return f"{ch!r} (U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed')})"


def plain_text_problem(value: str, *, what: str = "the value") -> str | None:
    """Why ``value`` is not plain, printable ASCII without whitespace (None when it is).

    Catches the bad input that looks right on a screen: empty or blank values, leading/trailing or inner
    whitespace, control characters and non-ASCII look-alikes (a Cyrillic ``\\u0455`` for ``s``, a fullwidth
    ``\\uff11`` for ``1``).
    """
    if not value:
        return f"{what} is empty"
    if not value.strip():
        return f"{what} is only whitespace"
    for ch in value:
        if ch.isspace():
            return f"{what} contains whitespace ({_describe_char(ch)})"
        if not ch.isprintable():
            return f"{what} contains a control character ({_describe_char(ch)})"
        if not ch.isascii():
            return f"{what} contains the non-ASCII character {_describe_char(ch)}, which only looks like ASCII"
    return None
