"""The restore order is data (``configs/restore-order.yaml``, a reason per position), applied by one tested
function, :func:`sort_objects`, after Velero's restore priorities."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tasks.crds import REPO_ROOT
from tasks.errors import InputError

ORDER_FILE = REPO_ROOT / "configs" / "restore-order.yaml"


@dataclass(frozen=True)
class Priority:
    """One position: a kind (and its API group, ``""`` for core) and why it sits there."""

    kind: str
    group: str
    reason: str


def load_order(path: Path = ORDER_FILE) -> list[Priority]:
    """Read the priority list.

    Raises:
        InputError: an entry without ``kind`` or ``reason``, or a kind listed twice.
    """
    raw = yaml.safe_load(path.read_text()) or {}
    out: list[Priority] = []
    for i, entry in enumerate(raw.get("priorities") or []):
        if not isinstance(entry, dict) or not entry.get("kind") or not entry.get("reason"):
            raise InputError(str(path), f"priorities[{i}]", "needs kind and reason", "add both")
        p = Priority(entry["kind"], entry.get("group", ""), entry["reason"])
        if any((q.kind, q.group) == (p.kind, p.group) for q in out):
            raise InputError(str(path), f"priorities[{i}]", f"{p.kind} is listed twice", "keep one entry")
        out.append(p)
    return out


def _group(obj: dict[str, Any]) -> str:
    api_version = obj.get("apiVersion", "")
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def position(obj: dict[str, Any], order: list[Priority]) -> int:
    """The index of ``obj``'s kind in ``order`` (``len(order)`` for kinds not listed)."""
    for i, p in enumerate(order):
        if p.kind == obj.get("kind") and p.group == _group(obj):
            return i
    return len(order)


def sort_objects(objects: Iterable[dict[str, Any]], order: list[Priority]) -> list[dict[str, Any]]:
    """Return ``objects`` in restore order: by position, unlisted kinds after all listed ones (by kind
    name), then namespace, then name, so the same backup always restores in the same order."""
    def key(obj: dict[str, Any]) -> tuple[int, str, str, str]:
        pos = position(obj, order)
        meta = obj.get("metadata", {})
        return pos, obj.get("kind", "") if pos == len(order) else "", meta.get("namespace") or "", meta.get("name", "")

    return sorted(objects, key=key)


def waves(objects: Iterable[dict[str, Any]], order: list[Priority]) -> list[list[dict[str, Any]]]:
    """Group the sorted objects into waves of one position each; a wave may be applied in parallel."""
    out: list[list[dict[str, Any]]] = []
    last: tuple[int, str] | None = None
    for obj in sort_objects(objects, order):
        pos = position(obj, order)
        mark = (pos, obj.get("kind", "") if pos == len(order) else "")
        if mark != last:
            out.append([])
            last = mark
        out[-1].append(obj)
    return out
