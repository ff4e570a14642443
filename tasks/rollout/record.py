"""The rollout record on the InferenceService: read it, and change it (with the spec, when traffic moves) in
one optimistic-concurrency write; and the rollout's Events on the InferenceService.

Writes are server-side apply with field manager ``kaiops`` through :func:`tasks.kube.update`: the whole
current ``metadata.labels/annotations`` and ``spec`` with the change, plus ``metadata.resourceVersion`` as a
precondition, so a concurrent write (the KServe controller updating status, another rollout taking the
lease) makes the apply fail with 409 and the change is re-read and re-made (two rollouts can never both take
the lease).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubernetes.dynamic import DynamicClient

from tasks import kube
from tasks.rollout.isvc import ISVC_API, ISVC_KIND, get_isvc
from tasks.rollout.state import RolloutRecord

EVENT_COMPONENT = "kaiops-rollout"  # source.component of the rollout's Events
EVENT_REPORTER = "kaiops.io/rollout"  # their reportingComponent


def write_record(
    dyn: DynamicClient,
    namespace: str,
    name: str,
    change: Callable[[RolloutRecord | None], RolloutRecord | None],
    spec_change: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[dict[str, Any], RolloutRecord | None]:
    """Apply ``change`` to the record on the InferenceService (and optionally change its spec) atomically.

    Args:
        change: gets the current record (None when no rollout ever ran) and returns the new one, or None
            to leave the object unchanged; may raise to refuse.
        spec_change: edits the ``spec`` dict in place in the same write.

    Returns:
        (the InferenceService after the write, the record written or None).
    """
    written: list[RolloutRecord | None] = [None]

    def mutate(body: dict[str, Any]) -> dict[str, Any] | None:
        annotations = body["metadata"].get("annotations") or {}
        new = change(RolloutRecord.from_annotations(annotations))
        written[0] = new
        if new is None:
            return None
        # every record key is written, empty ones as "" (read back as unset): leaving a key out would not
        # remove it, because the apiserver does not track field ownership of this CRD's metadata.annotations
        # (a new rollout then inherited the previous one's analysis state)
        annotations = {k: v for k, v in annotations.items() if not k.startswith("rollout.kaiops.io/")}
        annotations.update(new.to_annotations())
        body["metadata"]["annotations"] = annotations
        if spec_change is not None:
            spec_change(body["spec"])
        return body

    obj = kube.update(dyn, ISVC_API, ISVC_KIND, name, namespace, mutate)
    return obj, written[0]


def read_record(dyn: DynamicClient, namespace: str, name: str) -> tuple[dict[str, Any], RolloutRecord | None]:
    """Return (the InferenceService, its rollout record or None)."""
    obj = get_isvc(dyn, namespace, name)
    return obj, RolloutRecord.from_annotations(obj["metadata"].get("annotations"))


def record_event(
    dyn: DynamicClient, isvc: dict[str, Any], reason: str, message: str, *, warning: bool = False
) -> None:
    """Create a core/v1 Event on the InferenceService (``kubectl describe`` shows it) with
    :func:`tasks.kube.record_event`.

    Args:
        reason: the decision name (e.g. ``advance``, ``rollback``) as the Event reason.
        message: one line (cut to 1 KiB).
        warning: a Warning Event (failure, rollback) instead of a Normal one.
    """
    kube.record_event(dyn, {"apiVersion": ISVC_API, "kind": ISVC_KIND, **isvc}, reason, message,
                      type_=kube.EventType.WARNING if warning else kube.EventType.NORMAL,
                      component=EVENT_COMPONENT, reporting_component=EVENT_REPORTER)


def list_events(dyn: DynamicClient, namespace: str, name: str) -> list[dict[str, Any]]:
    """Events recorded on the InferenceService ``name`` (oldest first)."""
    return kube.list_events(dyn, namespace, name)
