"""The one interface both canary routing ways implement (:class:`Routing`); callers never ask which one.

Routing moves traffic and never sees metrics (Flagger's ``pkg/router`` split). A spec change is a function
that edits the InferenceService's ``spec`` in place, written in the same optimistic-concurrency write as the
rollout record (:func:`tasks.rollout.record.write_record`); the ``after_*`` hooks do what lives outside that
spec (a second InferenceService, an HTTPRoute).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from tasks.rollout.state import RolloutRecord

SpecChange = Callable[[dict[str, Any]], None]
"""Edits an InferenceService ``spec`` dict in place."""


class Routing(Protocol):
    """How one deployment mode splits traffic between the stable and the canary model.

    Implementations (they subclass it for the default no-op ``after_*`` hooks):
    :class:`tasks.rollout.routing.serverless.ServerlessRouting` (Knative
    ``canaryTrafficPercent``) and :class:`tasks.rollout.routing.raw.RawRouting` (two InferenceServices behind an
    HTTPRoute).
    """

    mode: str  # the KServe deployment mode it serves: Serverless or RawDeployment

    def revisions(self, isvc: dict[str, Any]) -> tuple[str, str]:
        """(canary, baseline) as the metric series name them, from the live objects."""
        ...

    def look_revisions(self, isvc: dict[str, Any], record: RolloutRecord) -> tuple[str, str]:
        """(canary, baseline) the queries of a look use."""
        ...

    def stable_revision(self, isvc: dict[str, Any]) -> str:
        """What serves now, before a rollout (saved as the record's ``previous_revision``)."""
        ...

    def start_spec(self, uri: str, percent: int) -> SpecChange | None:
        """The spec change that starts the canary on ``uri`` at ``percent`` % (None: none)."""
        ...

    def traffic_spec(self, percent: int) -> SpecChange | None:
        """The spec change that gives the canary ``percent`` % (None: none)."""
        ...

    def promote_spec(self) -> SpecChange | None:
        """The spec change that makes the canary the stable model (None: none)."""
        ...

    def rollback_spec(self, previous_uri: str) -> SpecChange | None:
        """The spec change that sends all traffic back to ``previous_uri`` (None: none)."""
        ...

    def after_start(self, isvc: dict[str, Any], uri: str, percent: int) -> None:
        """Outside the spec, after the start write (default: nothing)."""
        return None

    def after_traffic(self, percent: int) -> None:
        """Outside the spec, after a traffic write."""
        return None

    def after_ready(self, percent: int) -> None:
        """Outside the spec, once the canary is ready."""
        return None

    def after_promote(self, record: RolloutRecord) -> None:
        """Outside the spec, before the promote write."""
        return None

    def after_rollback(self, record: RolloutRecord) -> None:
        """Outside the spec, before the rollback write."""
        return None

    def wait_canary(self, record: RolloutRecord, timeout: float) -> dict[str, Any]:
        """Wait up to ``timeout`` seconds until the canary serves; return the object waited on.

        Default: KServe's readiness (:func:`tasks.rollout.readiness.wait_revision`) of :meth:`ready_target`'s
        InferenceService. Raises :class:`tasks.rollout.readiness.RevisionFailed` ("deadline" in the message
        when only time ran out)."""
        from tasks.rollout.readiness import wait_revision

        namespace, name, percent = self.ready_target(record)
        previous = record.previous_revision if name == self.name else ""  # type: ignore[attr-defined]
        return wait_revision(self.dyn, namespace, name, previous, percent, timeout)  # type: ignore[attr-defined]

    def ready_target(self, record: RolloutRecord) -> tuple[str, str, int | None]:
        """(namespace, InferenceService name, expected canary percent or None) to wait on for readiness."""
        ...

    def serving(self, isvc: dict[str, Any]) -> dict[str, int]:
        """Traffic percent (or weight) per revision or backend, as the cluster reports it now."""
        ...

    def describe_rollback(self, record: RolloutRecord) -> str:
        """One line: what a rollback would change (``--dry-run``)."""
        ...

    def spec_rolled_back(self, isvc: dict[str, Any], record: RolloutRecord) -> bool:
        """True when the InferenceService's spec already says what a rollback writes."""
        ...
