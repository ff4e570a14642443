"""Restore-drill scratch namespaces, as progress saved outside memory: which drill owns each, whether it lives.

A drill labels every scratch namespace it creates ``kaiops.io/drill=<drill id>`` and writes its lease on the
namespace itself, as annotations modelled on a ``coordination.k8s.io/v1`` Lease (``holderIdentity``,
``renewTime``, ``leaseDurationSeconds``): :data:`HOLDER`, :data:`RENEWED`, :data:`LEASE`. While the drill runs,
:class:`Heartbeat` renews :data:`RENEWED` every third of the lease. A drill is **dead** when its lease has
expired: a killed process stops renewing, a drill that finished deleted its namespaces itself (one whose
cleanup failed stops renewing too). The record lives on the namespaces it describes, so it goes with them and
needs no permission beyond the ``patch namespaces`` a restore already has.

- Backups never include a labelled namespace (:func:`is_scratch`: the export and the fleet's namespace listing
  leave them out), so a later drill never restores ``d-<id>-d-<id>-<ns>``.
- The next drill and the retention flow call :func:`sweep`, which deletes the namespaces of dead drills only.
  :func:`dead_scratch` is its pure decision; a running drill renews its lease, so its namespaces are never
  swept (a drill whose renewals fail for a whole lease - the apiserver unreachable that long - could be).

Not here: what a drill restores and compares (:mod:`tasks.backup.drill`), the order of a drill's steps
(:mod:`flows.drill`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes.dynamic import DynamicClient

from tasks import kube

DRILL_LABEL = "kaiops.io/drill"
HOLDER = "kaiops.io/drill-holder"
RENEWED = "kaiops.io/drill-renew-time"
LEASE = "kaiops.io/drill-lease-seconds"
#: Lease length of a drill when its policy says nothing else (seconds).
DEFAULT_LEASE_SECONDS = 300.0
#: A labelled namespace with no (readable) lease - made by a kaiops before drill leases, or by hand through
#: :func:`tasks.backup.drill.plan_drill` without one - counts as dead this many seconds after its creation.
UNLEASED_GRACE_SECONDS = 3600.0


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def lease_annotations(holder: str, now: datetime, seconds: float) -> dict[str, str]:
    """The annotations of a fresh lease: ``holder`` (e.g. ``hostname:pid``), renewed at ``now`` (aware
    datetime), valid ``seconds``."""
    return {HOLDER: holder, RENEWED: _iso(now), LEASE: f"{seconds:g}"}


def is_scratch(namespace: dict[str, Any]) -> bool:
    """True when the Namespace object carries :data:`DRILL_LABEL` (a drill's scratch namespace)."""
    return DRILL_LABEL in ((namespace.get("metadata") or {}).get("labels") or {})


def lease_expiry(namespace: dict[str, Any]) -> datetime | None:
    """When the lease on this scratch Namespace object runs out (aware datetime).

    Renew time + lease seconds; a namespace without a readable lease: its ``creationTimestamp`` +
    :data:`UNLEASED_GRACE_SECONDS`; None when it has neither (never counted as dead).
    """
    meta = namespace.get("metadata") or {}
    notes = meta.get("annotations") or {}
    renewed = _parse(notes.get(RENEWED))
    try:
        seconds = float(notes.get(LEASE, ""))
    except ValueError:
        renewed = None
        seconds = 0.0
    if renewed is not None:
        return renewed + timedelta(seconds=seconds)
    created = _parse(meta.get("creationTimestamp"))
    return None if created is None else created + timedelta(seconds=UNLEASED_GRACE_SECONDS)


def dead_scratch(namespaces: Iterable[dict[str, Any]], now: datetime) -> list[str]:
    """Names of the scratch namespaces of dead drills, sorted: labelled :data:`DRILL_LABEL`, not already being
    deleted (``deletionTimestamp``), and whose lease expired before ``now`` (:func:`lease_expiry`).

    Args:
        namespaces: Namespace objects as the apiserver returns them (any; unlabelled ones are ignored).
        now: aware datetime.
    """
    out = []
    for ns in namespaces:
        meta = ns.get("metadata") or {}
        if not is_scratch(ns) or meta.get("deletionTimestamp"):
            continue
        expiry = lease_expiry(ns)
        if expiry is not None and expiry < now:
            out.append(meta["name"])
    return sorted(out)


def _namespaces(dyn: DynamicClient) -> Any:
    return kube.resource_for(dyn, "v1", "Namespace")


def list_scratch(dyn: DynamicClient) -> list[dict[str, Any]]:
    """Every Namespace labelled :data:`DRILL_LABEL` on the cluster.

    Raises:
        TemporaryError / PermanentError: the apiserver did not answer, or refused the list.
    """
    from tasks.backup.discovery import KindInfo, list_pages

    info = KindInfo("", "v1", "Namespace", "namespaces", False)
    return list(list_pages(dyn.client, info, label_selector=DRILL_LABEL))


def sweep(dyn: DynamicClient, now: datetime | None = None, dry_run: bool = False) -> dict[str, list[str]]:
    """Delete the scratch namespaces of dead drills (:func:`dead_scratch`); the namespace controller deletes
    what is in them. Not waited for.

    Returns:
        ``{"swept": [names deleted, or that would be with dry_run], "errors": [messages]}``; a failed delete
        is a message, not an exception (the next run tries again).

    Raises:
        TemporaryError / PermanentError: the namespaces could not be listed.
    """
    dead = dead_scratch(list_scratch(dyn), now or datetime.now(UTC))
    if dry_run:
        return {"swept": dead, "errors": []}
    swept, errors = [], []
    for name in dead:
        try:
            _namespaces(dyn).delete(name=name)
            swept.append(name)
        except Exception as exc:  # reported; the next drill or retention run sweeps it again
            if getattr(exc, "status", None) == 404:
                continue
            errors.append(f"delete Namespace {name}: {str(exc)[:200]}")
    return {"swept": swept, "errors": errors}


class Heartbeat:
    """Renew the lease on a running drill's scratch namespaces every third of ``seconds`` (a daemon thread).

    ``with Heartbeat(dyn, names, seconds): ...``. A namespace that does not exist yet or any more is skipped; a
    failed renewal is tried again at the next beat (the lease has three beats of margin).

    Args:
        dyn: a client of its own (the thread uses it alongside the drill's).
        names: the drill's scratch namespaces.
        seconds: the lease length written on them.
        clock: the current time (tests).
    """

    def __init__(self, dyn: DynamicClient, names: Iterable[str], seconds: float,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.dyn, self.names, self.seconds, self.clock = dyn, sorted(names), seconds, clock
        self.beats = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drill-lease", daemon=True)

    def renew(self) -> None:
        """Write the renew time on every namespace of the drill once."""
        body = {"metadata": {"annotations": {RENEWED: _iso(self.clock())}}}
        for name in self.names:
            try:
                _namespaces(self.dyn).patch(name=name, body=body, content_type="application/merge-patch+json")
            except Exception:
                continue
        self.beats += 1

    def _run(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            self.renew()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
