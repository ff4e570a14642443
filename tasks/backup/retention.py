"""Which backups to keep: N daily, M weekly, K monthly complete backups (pure; no I/O).

The newest complete backup of each of the last N days that have one is kept as a daily, the newest of
each of the last M ISO weeks as a weekly, the newest of each of the last K months as a monthly (one backup
can serve several). The newest complete backup is always kept, whatever the counts say. An incomplete
backup (no manifest) younger than ``incomplete_grace`` may still be running and is kept; an older one is
deleted. The result is a :class:`Plan`; a dry run prints it, a real run deletes ``plan.delete``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum


class Reason(StrEnum):
    """Why a backup is kept or deleted."""

    newest = "newest"  # the newest complete backup: never deleted
    daily = "daily"  # newest of one of the last N days
    weekly = "weekly"  # newest of one of the last M ISO weeks
    monthly = "monthly"  # newest of one of the last K months
    expired = "expired"  # complete, but no rule keeps it
    in_progress = "in-progress"  # incomplete and younger than the grace period (may still be running)
    incomplete = "incomplete"  # no manifest and older than the grace period: a failed run's leftovers
    unknown_time = "unknown-time"  # the id carries no time; kept, never guessed at


@dataclass(frozen=True)
class Candidate:
    """One backup as retention sees it: id, start time (UTC, aware), complete (has its manifest)."""

    id: str
    time: datetime | None
    complete: bool


@dataclass
class Plan:
    """``keep``/``delete``: backup id -> reasons (a kept backup may have several)."""

    keep: dict[str, list[Reason]] = field(default_factory=dict)
    delete: dict[str, list[Reason]] = field(default_factory=dict)

    def rows(self) -> list[dict[str, str]]:
        """One row per backup, newest first, for tables."""
        rows = [{"backup": k, "action": "keep", "reasons": ",".join(v)} for k, v in self.keep.items()]
        rows += [{"backup": k, "action": "delete", "reasons": ",".join(v)} for k, v in self.delete.items()]
        return sorted(rows, key=lambda r: r["backup"], reverse=True)


def _bucket_keep(backups: list[Candidate], count: int, bucket: Callable[[datetime], object]) -> set[str]:
    kept: set[str] = set()
    seen: list[object] = []
    for b in backups:  # newest first
        key = bucket(b.time)  # type: ignore[arg-type]
        if key in seen:
            continue
        if len(seen) >= count:
            break
        seen.append(key)
        kept.add(b.id)
    return kept


def plan(candidates: Iterable[Candidate], *, daily: int, weekly: int, monthly: int, now: datetime,
         incomplete_grace: timedelta = timedelta(days=1)) -> Plan:
    """Decide which backups to keep and which to delete.

    Args:
        candidates: every backup under the destination (any order).
        daily, weekly, monthly: how many days / ISO weeks / months to keep one backup for (>= 0).
        now: the current time (UTC, aware).
        incomplete_grace: how old an incomplete backup must be before it is deleted.

    Returns:
        :class:`Plan`. Invariant (tested): the newest complete backup is never in ``delete``.
    """
    result = Plan()
    timed = [c for c in candidates if c.time is not None]
    for c in candidates:
        if c.time is None:
            result.keep[c.id] = [Reason.unknown_time]
    complete = sorted((c for c in timed if c.complete), key=lambda c: (c.time, c.id), reverse=True)
    reasons: dict[str, list[Reason]] = {c.id: [] for c in complete}
    if complete:
        reasons[complete[0].id].append(Reason.newest)
    rules = (
        (Reason.daily, daily, lambda t: t.date()),
        (Reason.weekly, weekly, lambda t: t.isocalendar()[:2]),
        (Reason.monthly, monthly, lambda t: (t.year, t.month)),
    )
    for reason, count, bucket in rules:
        for backup_id in _bucket_keep(complete, count, bucket):
            reasons[backup_id].append(reason)
    for c in complete:
        if reasons[c.id]:
            result.keep[c.id] = reasons[c.id]
        else:
            result.delete[c.id] = [Reason.expired]
    for c in timed:
        if c.complete:
            continue
        if now - c.time > incomplete_grace:  # type: ignore[operator]
            result.delete[c.id] = [Reason.incomplete]
        else:
            result.keep[c.id] = [Reason.in_progress]
    return result
