"""Field paths as users read them: ``spec.workerGroupSpecs[0].rayStartParams.num-cpus``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def join_path(parts: Iterable[str | int]) -> str:
    """Return the dotted path for ``["spec", "containers", 0, "name"]`` -> ``spec.containers[0].name``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def child(path: str, key: str | int) -> str:
    """Return ``path`` extended by one key (str) or list index (int)."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def get(doc: Any, *keys: str | int) -> Any:
    """Return ``doc[k1][k2]...`` or None when any step is missing or of the wrong type."""
    for key in keys:
        if isinstance(key, int):
            if not isinstance(doc, list) or key >= len(doc):
                return None
        elif not isinstance(doc, dict):
            return None
        doc = doc[key] if isinstance(key, int) else doc.get(key)
    return doc


def mapping(value: Any) -> dict[str, Any]:
    """Return ``value`` if it is a dict, else an empty dict (for tolerant walking of bad input)."""
    return value if isinstance(value, dict) else {}


def sequence(value: Any) -> list[Any]:
    """Return ``value`` if it is a list, else an empty list."""
    return value if isinstance(value, list) else []
