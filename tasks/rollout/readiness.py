"""Is the new revision serving? KServe's own readiness rules for an InferenceService, as a pure verdict and
as a watch until it holds (``PropagateStatus`` in Serverless mode, ``PropagateRawStatus`` in RawDeployment)."""

from __future__ import annotations

from typing import Any

from kubernetes.dynamic import DynamicClient

from tasks import kube
from tasks.errors import PermanentError
from tasks.rollout.isvc import ISVC_API, ISVC_KIND, deployment_mode, predictor_status

FAILED_TRANSITIONS = ("BlockedByFailedLoad", "InvalidSpec")


class RevisionFailed(PermanentError):
    """The new revision failed to load or did not become ready before the deadline (message: KServe's reason)."""


def revision_verdict(isvc: dict[str, Any], previous_revision: str, want_percent: int | None) -> str | None:
    """Is the newly created revision serving? ``"ready"``, a failure message, or None (not yet).

    Ready (KServe ``PropagateStatus``): ``latestCreatedRevision == latestReadyRevision`` and differs from
    ``previous_revision``, condition ``PredictorReady`` True, and (Serverless) the latest revision has its
    share in ``traffic``. RawDeployment (``PropagateRawStatus``, no revision names): ``observedGeneration``
    equals ``metadata.generation`` and ``PredictorReady`` is True. Failed: ``modelStatus.transitionStatus``
    is ``BlockedByFailedLoad``/``InvalidSpec`` (reason from ``lastFailureInfo``) or the ``Ready`` condition
    reports ``RevisionFailed``.
    """
    pred = predictor_status(isvc)
    created, ready = pred.get("latestCreatedRevision", ""), pred.get("latestReadyRevision", "")
    model = (isvc.get("status") or {}).get("modelStatus") or {}
    if deployment_mode(isvc) == "RawDeployment":
        # PropagateRawStatus: no revisions in status (latestCreatedRevision is the Deployment's rollout number);
        # the spec is served once the status observed this generation and PredictorReady (Deployment
        # Available) is True.
        if model.get("transitionStatus") in FAILED_TRANSITIONS:
            info = model.get("lastFailureInfo") or {}
            return f"{isvc['metadata']['name']} failed: {info.get('reason', model['transitionStatus'])}: " \
                   f"{info.get('message', '')}"
        if (isvc.get("status") or {}).get("observedGeneration") != isvc["metadata"].get("generation"):
            return None
        return "ready" if kube.condition_true(isvc, "PredictorReady") else None
    if created and created != previous_revision and model.get("transitionStatus") in FAILED_TRANSITIONS:
        info = model.get("lastFailureInfo") or {}
        return f"revision {created} failed: {info.get('reason', model['transitionStatus'])}: {info.get('message', '')}"
    ready_cond = kube.condition(isvc, "Ready") or {}
    if ready_cond.get("reason") == "RevisionFailed" and created != previous_revision:
        return f"revision {created} failed: {ready_cond.get('message', '')}"
    if not created or created == previous_revision or created != ready:
        return None
    if not kube.condition_true(isvc, "PredictorReady"):
        return None
    if want_percent is not None:
        latest = [t for t in pred.get("traffic") or [] if t.get("latestRevision")]
        if not latest or int(latest[0].get("percent", 0)) != want_percent:
            return None
    return "ready"


def wait_revision(
    dyn: DynamicClient, namespace: str, name: str, previous_revision: str, want_percent: int | None, timeout: float
) -> dict[str, Any]:
    """Watch until the new revision is ready; return the InferenceService.

    Raises:
        RevisionFailed: it failed to load (KServe's reason) or was not ready within ``timeout`` seconds.
    """
    try:
        obj = kube.wait_for(
            dyn,
            ISVC_API,
            ISVC_KIND,
            name,
            lambda o: revision_verdict(o, previous_revision, want_percent) is not None,
            namespace=namespace,
            timeout=max(1.0, timeout),
            what="the new revision ready" + (f" at {want_percent}%" if want_percent is not None else ""),
        )
    except TimeoutError as exc:
        raise RevisionFailed(f"new revision not ready within the deadline: {exc}") from exc
    verdict = revision_verdict(obj, previous_revision, want_percent)
    if verdict != "ready":
        raise RevisionFailed(verdict or "unknown")
    return obj
