"""Numbers a user writes: whole numbers as text (payloads, annotations) and seconds.
"""

from __future__ import annotations

import re
from typing import Any

from configs.errors import InputError
from configs.inputs.text import plain_text_problem

_ASCII_INT = re.compile(r"[0-9]+")


def positive_int(value: Any, *, source: str, field: str, maximum: int = 2**31 - 1) -> int:
    """An integer ``1..maximum`` given as a JSON number or a string of ASCII digits.

    ``str.isdigit()`` is true for superscript two (U+00B2) and Arabic-Indic three (U+0663), and ``int()`` takes
    the Arabic-Indic and fullwidth digits but not the superscript: every non-ASCII digit is refused
    here, as are booleans, floats, signs and whitespace ('007' is 7).

    Raises:
        InputError: naming ``source``/``field`` and the fix.
    """
    fix = "send a positive whole number in ASCII digits, e.g. \"3\""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InputError(source, field, f"{value!r} is a {type(value).__name__}, not a whole number", fix)
    if isinstance(value, str):
        problem = plain_text_problem(value)
        if problem or not _ASCII_INT.fullmatch(value):
            raise InputError(source, field, f"{value!r} is not written in ASCII digits"
                             + (f": {problem}" if problem else ""), fix)
        if len(value) > 19:
            raise InputError(source, field, f"{value[:24]}... has {len(value)} digits, more than {maximum}", fix)
        value = int(value)
    if not 1 <= value <= maximum:
        raise InputError(source, field, f"{value} is outside 1..{maximum}", fix)
    return int(value)


def seconds_problem(value: Any, *, minimum: float = 0.0, maximum: float = 86400.0) -> str | None:
    """Why ``value`` is not a finite number of seconds in ``(minimum, maximum]`` (None when it is)."""
    import math

    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{value!r} is not a number of seconds"
    if math.isnan(value) or math.isinf(value):
        return f"{value} is not a finite number of seconds"
    if not minimum < value <= maximum:
        return f"{value:g} s is outside ({minimum:g}, {maximum:g}]"
    return None


def check_seconds(value: Any, *, field: str, minimum: float = 0.0, maximum: float = 86400.0,
                  source: str = "<cli>") -> float:
    """Return ``value`` when :func:`seconds_problem` finds nothing.

    Raises:
        InputError: naming ``field``.
    """
    problem = seconds_problem(value, minimum=minimum, maximum=maximum)
    if problem:
        raise InputError(source, field, problem, f"pass a number of seconds above {minimum:g}, at most {maximum:g}")
    return float(value)
