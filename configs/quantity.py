"""Kubernetes quantities (``500m``, ``2``, ``8Gi``, ``1.5G``), parsed after ``k8s.io/apimachinery/pkg/api/resource``
(binary suffixes Ki..Ei, decimal n/u/m/k/M/G/T/P/E, exponents). Pure; used by the config models.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1), "k": Decimal(10**3),
            "M": Decimal(10**6), "G": Decimal(10**9), "T": Decimal(10**12), "P": Decimal(10**15),
            "E": Decimal(10**18)}  # fmt: skip
_QUANTITY = re.compile(r"^([+-]?[0-9]*\.?[0-9]+)((?:[eE][+-]?[0-9]+)|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")


def parse_quantity(value: str | int | float) -> Decimal:
    """Return the value of a Kubernetes quantity (``"500m"`` -> 0.5, ``"8Gi"`` -> 8589934592).

    Raises:
        ValueError: ``value`` is not a quantity (e.g. ``"8GB"``, ``"two"``, negative).
    """
    text = str(value).strip()
    match = _QUANTITY.match(text)
    if not match:
        raise ValueError(f"{value!r} is not a Kubernetes quantity (examples: 500m, 2, 512Mi, 8Gi, 1G)")
    number, suffix = match.group(1), match.group(2) or ""
    try:
        base = Decimal(number)
    except InvalidOperation as exc:  # pragma: no cover - the regex already checked the shape
        raise ValueError(f"{value!r} is not a number") from exc
    if suffix in _BINARY:
        result = base * _BINARY[suffix]
    elif suffix[:1] in "eE" and suffix:
        result = base * (Decimal(10) ** int(suffix[1:]))
    else:
        result = base * _DECIMAL[suffix]
    if result < 0:
        raise ValueError(f"{value!r} is negative")
    return result


def quantity_value(value: str | int | float) -> int:
    """The integer a Kubernetes ``Quantity.Value()`` returns: the quantity rounded up (``"500m"`` -> 1)."""
    q = parse_quantity(value)
    return int(q.to_integral_value(rounding="ROUND_CEILING"))


def quantity_text(text: str) -> str:
    """``text`` unchanged when it is a quantity (a validator: :func:`parse_quantity`'s ``ValueError`` otherwise)."""
    parse_quantity(text)
    return text
