"""Kubernetes side of a rollout: read and write the rollout record, move traffic, wait for readiness, events.

Writes are server-side apply with field manager ``kaiops`` (:func:`tasks.kube.apply`). Because one field
manager that applies a *partial* object gives up (deletes) the fields it owned but left out, every write
sends the whole current ``metadata.labels/annotations`` and ``spec`` with the change, plus
``metadata.resourceVersion`` as a precondition: a concurrent write (the KServe controller updating
status, another rollout taking the lease) makes the apply fail with 409 and the change is re-read and
re-made (optimistic concurrency, so two rollouts can never both take the lease).

Routing is per deployment mode, behind one small interface (:class:`ServerlessRouting`,
:class:`RawRouting`); routing never sees metrics.
"""

from __future__ import annotations

import copy
import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kubernetes.dynamic import DynamicClient

from tasks import kube
from tasks.errors import InputError, PermanentError
from tasks.rollout.state import RolloutRecord, iso

ISVC_API, ISVC_KIND = "serving.kserve.io/v1beta1", "InferenceService"
ROUTE_API, ROUTE_KIND = "gateway.networking.k8s.io/v1", "HTTPRoute"
MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
FAILED_TRANSITIONS = ("BlockedByFailedLoad", "InvalidSpec")
log = logging.getLogger("kaiops.rollout")
SCALE_DOWN_DELAY_S = 30.0  # Argo Rollouts' scaleDownDelaySeconds default: a route change takes time to propagate
ROUTE_ACCEPT_TIMEOUT_S = 60.0


class RevisionFailed(PermanentError):
    """The new revision failed to load or did not become ready before the deadline (message: KServe's reason)."""


def get_isvc(dyn: DynamicClient, namespace: str, name: str) -> dict[str, Any]:
    """Return the InferenceService. Raises :class:`tasks.kube.NotFound`."""
    return kube.get(dyn, ISVC_API, ISVC_KIND, name, namespace)


def deployment_mode(isvc: dict[str, Any]) -> str:
    """``Serverless`` or ``RawDeployment``, decided as KServe v0.20 decides it (``GetDeploymentMode`` in
    ``pkg/controller/v1beta1/inferenceservice/utils``): ``status.deploymentMode`` first (recorded at the first
    reconcile; a later annotation change does not switch modes), then annotation
    ``serving.kserve.io/deploymentMode``, else Serverless (the release's ``inferenceservice-config`` default).
    ``Standard`` is v0.20's name for RawDeployment, ``Knative`` for Serverless; KServe's defaulting webhook
    rewrites ``RawDeployment``/``Serverless`` to those and writes the annotation when the configured default is
    ``Standard``."""
    value = (isvc.get("status") or {}).get("deploymentMode") or \
        ((isvc.get("metadata") or {}).get("annotations") or {}).get(MODE_ANNOTATION, "Serverless")
    return "RawDeployment" if value in ("RawDeployment", "Standard") else "Serverless"


def storage_uri(isvc: dict[str, Any]) -> str:
    """``spec.predictor.model.storageUri`` ('' when absent)."""
    return (((isvc.get("spec") or {}).get("predictor") or {}).get("model") or {}).get("storageUri", "")


def predictor_status(isvc: dict[str, Any]) -> dict[str, Any]:
    """``status.components.predictor`` ({} when absent)."""
    return ((isvc.get("status") or {}).get("components") or {}).get("predictor") or {}


def traffic(isvc: dict[str, Any]) -> dict[str, int]:
    """Percent per revision name from ``status.components.predictor.traffic``."""
    out: dict[str, int] = {}
    for t in predictor_status(isvc).get("traffic") or []:
        out[t.get("revisionName", "")] = out.get(t.get("revisionName", ""), 0) + int(t.get("percent", 0) or 0)
    return out


def _body(obj: dict[str, Any]) -> dict[str, Any]:
    """The applyable part of an object: identity, labels, annotations, spec and the resourceVersion."""
    meta = obj["metadata"]
    out_meta: dict[str, Any] = {"name": meta["name"], "resourceVersion": meta["resourceVersion"]}
    if meta.get("namespace"):
        out_meta["namespace"] = meta["namespace"]
    for key in ("labels", "annotations"):
        if meta.get(key):
            out_meta[key] = dict(meta[key])
    body = {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "metadata": out_meta}
    if "spec" in obj:
        body["spec"] = copy.deepcopy(obj["spec"])
    return body


def update(
    dyn: DynamicClient,
    api_version: str,
    kind: str,
    namespace: str,
    name: str,
    mutate: Callable[[dict[str, Any]], dict[str, Any] | None],
    *,
    attempts: int = 8,
) -> dict[str, Any]:
    """Read-modify-apply with ``resourceVersion`` as precondition, retried on a concurrent write.

    Args:
        mutate: gets the applyable body (see :func:`_body`) and returns it changed, or None for "no change"
            (then nothing is written). It may raise to refuse (e.g. :class:`LeaseHeld`).

    Returns:
        the object as the server has it after the write (or as read, when nothing changed).

    Raises:
        kube.ApplyConflict: a field is owned by another manager, or ``attempts`` concurrent writes in a row.
    """
    for attempt in range(attempts):
        current = kube.get(dyn, api_version, kind, name, namespace)
        body = mutate(_body(current))
        if body is None:
            return current
        try:
            return kube.apply(dyn, body)
        except kube.ApplyConflict as exc:
            if "modified" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


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

    obj = update(dyn, ISVC_API, ISVC_KIND, namespace, name, mutate)
    return obj, written[0]


def read_record(dyn: DynamicClient, namespace: str, name: str) -> tuple[dict[str, Any], RolloutRecord | None]:
    """Return (the InferenceService, its rollout record or None)."""
    obj = get_isvc(dyn, namespace, name)
    return obj, RolloutRecord.from_annotations(obj["metadata"].get("annotations"))


def record_event(
    dyn: DynamicClient, isvc: dict[str, Any], reason: str, message: str, *, warning: bool = False
) -> None:
    """Create a core/v1 Event on the InferenceService (``kubectl describe`` shows it).

    Args:
        reason: CamelCase-free decision name (e.g. ``advance``, ``rollback``) as the Event reason.
        message: one line (truncated to 1 KiB).
    """
    meta = isvc["metadata"]
    now = iso(datetime.now(UTC))
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:16]}", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": ISVC_API,
            "kind": ISVC_KIND,
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid", ""),
        },
        "reason": reason,
        "message": message[:1024],
        "type": "Warning" if warning else "Normal",
        "firstTimestamp": now[:19] + "Z",
        "lastTimestamp": now[:19] + "Z",
        "count": 1,
        "source": {"component": "kaiops-rollout"},
        "reportingComponent": "kaiops.io/rollout",
        "reportingInstance": "kaiops",
    }
    kube.apply(dyn, event)


def list_events(dyn: DynamicClient, namespace: str, name: str) -> list[dict[str, Any]]:
    """Events recorded on the InferenceService ``name`` (oldest first)."""
    resource = kube.resource_for(dyn, "v1", "Event")
    items = resource.get(namespace=namespace, field_selector=f"involvedObject.name={name}").to_dict()["items"]
    return sorted(items, key=lambda e: e.get("lastTimestamp") or "")


def list_isvcs(dyn: DynamicClient, namespace: str | None = None) -> list[dict[str, Any]]:
    """Every InferenceService (all namespaces unless ``namespace``)."""
    resource = kube.resource_for(dyn, ISVC_API, ISVC_KIND)
    return resource.get(namespace=namespace).to_dict()["items"]


def delete(dyn: DynamicClient, api_version: str, kind: str, namespace: str, name: str) -> bool:
    """Delete an object; True when it existed."""
    resource = kube.resource_for(dyn, api_version, kind)
    try:
        resource.delete(name=name, namespace=namespace)
    except Exception as exc:
        if getattr(exc, "status", None) == 404:
            return False
        raise kube._translate(exc, f"delete {kind} {namespace}/{name}") from exc
    return True


# -------------------------------------------------------------------------------------------------------
# Readiness


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


# -------------------------------------------------------------------------------------------------------
# Routing per deployment mode


class ServerlessRouting:
    """Knative: ``predictor.canaryTrafficPercent`` on the one InferenceService.

    - start: new ``storageUri`` and ``canaryTrafficPercent = first step`` in one write; Knative creates a
      revision and KServe splits traffic between it and ``latestRolledoutRevision`` (tag ``prev``).
    - set traffic: change ``canaryTrafficPercent``.
    - promote: remove ``canaryTrafficPercent``: the latest revision takes 100 % and becomes
      ``latestRolledoutRevision``.
    - rollback: ``canaryTrafficPercent: 0`` sends 100 % back to ``latestRolledoutRevision`` at once (KServe
      remembers it in status; if the canary had already reached 100 % KServe falls back to
      ``previousRolledoutRevision``). The same write puts the previous ``storageUri`` back, so the spec
      says what serves: Knative then creates one more revision from that spec (same model as the
      previous one) which, with ``canaryTrafficPercent: 0`` kept, takes no traffic - the revision serving
      100 % stays the old, already warm one and the next rollout starts from a spec that matches it.
    """

    mode = "Serverless"

    def __init__(self, dyn: DynamicClient, namespace: str, name: str) -> None:
        self.dyn, self.namespace, self.name = dyn, namespace, name

    def revisions(self, isvc: dict[str, Any]) -> tuple[str, str]:
        """(canary revision, baseline revision) from ``status.components.predictor.traffic``."""
        pred = predictor_status(isvc)
        canary = baseline = ""
        for t in pred.get("traffic") or []:
            if t.get("latestRevision"):
                canary = t.get("revisionName", "")
            elif t.get("tag") == "prev" or not baseline:
                baseline = t.get("revisionName", "")
        return canary or pred.get("latestReadyRevision", ""), baseline or pred.get("latestRolledoutRevision", "")

    def stable_revision(self, isvc: dict[str, Any]) -> str:
        """The revision serving now, before a rollout (``latestRolledoutRevision`` or ``latestReadyRevision``)."""
        pred = predictor_status(isvc)
        return pred.get("latestRolledoutRevision") or pred.get("latestReadyRevision", "")

    @staticmethod
    def start_spec(uri: str, percent: int) -> Callable[[dict[str, Any]], None]:
        def change(spec: dict[str, Any]) -> None:
            spec["predictor"].setdefault("model", {})["storageUri"] = uri
            spec["predictor"]["canaryTrafficPercent"] = percent

        return change

    @staticmethod
    def traffic_spec(percent: int) -> Callable[[dict[str, Any]], None]:
        def change(spec: dict[str, Any]) -> None:
            spec["predictor"]["canaryTrafficPercent"] = percent

        return change

    @staticmethod
    def promote_spec() -> Callable[[dict[str, Any]], None]:
        def change(spec: dict[str, Any]) -> None:
            spec["predictor"].pop("canaryTrafficPercent", None)

        return change

    @staticmethod
    def rollback_spec(previous_uri: str) -> Callable[[dict[str, Any]], None]:
        def change(spec: dict[str, Any]) -> None:
            spec["predictor"]["canaryTrafficPercent"] = 0
            if previous_uri:
                spec["predictor"].setdefault("model", {})["storageUri"] = previous_uri

        return change

    def after_start(self, isvc: dict[str, Any], uri: str, percent: int) -> None:
        """Nothing beyond the spec change."""

    def after_traffic(self, percent: int) -> None:
        """Nothing beyond the spec change."""

    def after_ready(self, percent: int) -> None:
        """Nothing: KServe already routes the first step's share to the new revision once it is ready."""

    def after_promote(self, record: RolloutRecord) -> None:
        """Nothing beyond the spec change."""

    def after_rollback(self, record: RolloutRecord) -> None:
        """Nothing beyond the spec change."""

    def ready_target(self, record: RolloutRecord) -> tuple[str, str, int | None]:
        """(namespace, InferenceService name, expected canary percent) to wait on."""
        return self.namespace, self.name, record.traffic

    def serving(self, isvc: dict[str, Any]) -> dict[str, int]:
        """Percent per revision as the status reports it."""
        return traffic(isvc)


class RawRouting:
    """RawDeployment / Standard: a second InferenceService ``<name>-canary`` and a Gateway API HTTPRoute
    ``<name>-rollout`` whose first rule's weighted ``backendRefs`` split traffic between the predictor
    Services ``<name>-predictor`` and ``<name>-canary-predictor`` (KServe raw mode ignores
    ``canaryTrafficPercent`` before v0.20). The rollout record stays on the stable InferenceService.

    - start: create the canary InferenceService (stable spec, new ``storageUri``) and the route at 100/0; once
      the canary is ready the route takes the first step's weights (a Deployment that is not Available gets
      no traffic, as KServe's Serverless path keeps it on the ready revision);
    - promote: the stable InferenceService takes the new ``storageUri``, the route goes to 100/0 once it is
      ready, the canary InferenceService is deleted once the route has moved off it (below);
    - rollback: the route goes to 100/0 for the stable one and the canary InferenceService is deleted, likewise.

    Before deleting the canary InferenceService, the route must have moved away from it: the Gateway
    controller has accepted the new route generation (``status.parents[].conditions[type=Accepted]
    .observedGeneration``, Gateway API v1) and ``scale_down_delay_s`` seconds have passed for the change to
    reach every gateway replica (the reason for Argo Rollouts' ``scaleDownDelaySeconds``). Deleting sooner
    sends the requests still routed to the canary to a backend that is gone (HTTP 502/503).
    """

    mode = "RawDeployment"

    def __init__(self, dyn: DynamicClient, namespace: str, name: str, gateway: tuple[str, str],
                 scale_down_delay_s: float = SCALE_DOWN_DELAY_S) -> None:
        self.dyn, self.namespace, self.name = dyn, namespace, name
        self.canary_name, self.route_name, self.gateway = f"{name}-canary", f"{name}-rollout", gateway
        self.scale_down_delay_s = scale_down_delay_s

    def revisions(self, isvc: dict[str, Any]) -> tuple[str, str]:
        """(canary, baseline) as the series name them: the predictor Deployments ``<isvc>-predictor`` (raw
        mode has one Deployment per InferenceService and no revision names in status)."""
        return f"{self.canary_name}-predictor", f"{self.name}-predictor"

    def stable_revision(self, isvc: dict[str, Any]) -> str:
        return f"{self.name}-predictor"

    @staticmethod
    def start_spec(uri: str, percent: int) -> None:
        return None

    @staticmethod
    def traffic_spec(percent: int) -> None:
        return None

    @staticmethod
    def promote_spec() -> None:
        return None

    @staticmethod
    def rollback_spec(previous_uri: str) -> None:
        return None

    def _route(self, percent: int) -> dict[str, Any]:
        return kube.apply(
            self.dyn,
            {
                "apiVersion": ROUTE_API,
                "kind": ROUTE_KIND,
                "metadata": {"name": self.route_name, "namespace": self.namespace},
                "spec": {
                    "parentRefs": [{"name": self.gateway[0], "namespace": self.gateway[1]}],
                    "rules": [
                        {
                            "backendRefs": [
                                {"name": f"{self.name}-predictor", "port": 80, "weight": 100 - percent},
                                {"name": f"{self.canary_name}-predictor", "port": 80, "weight": percent},
                            ]
                        }
                    ],
                },
            },
        )

    def after_start(self, isvc: dict[str, Any], uri: str, percent: int) -> None:
        spec = copy.deepcopy(isvc["spec"])
        spec["predictor"].setdefault("model", {})["storageUri"] = uri
        spec["predictor"].pop("canaryTrafficPercent", None)
        # the route forwards requests unchanged (/v1/models/<stable name>:predict), so the canary's server must
        # register the stable name (KServe runtimes append the predictor's args after --model_name={{.Name}})
        model = spec["predictor"]["model"]
        model["args"] = [a for a in model.get("args") or [] if not str(a).startswith("--model_name")]
        model["args"].append(f"--model_name={self.name}")
        mode = (isvc["metadata"].get("annotations") or {}).get(MODE_ANNOTATION, "RawDeployment")
        annotations = {MODE_ANNOTATION: mode}
        kube.apply(
            self.dyn,
            {
                "apiVersion": ISVC_API,
                "kind": ISVC_KIND,
                "metadata": {
                    "name": self.canary_name,
                    "namespace": self.namespace,
                    "annotations": annotations,
                    "labels": {"rollout.kaiops.io/stable": self.name},
                },
                "spec": spec,
            },
        )
        self._route(0)  # the canary gets its share once it is ready (see after_ready): no 503s while it loads

    def after_traffic(self, percent: int) -> None:
        self._route(percent)

    def after_ready(self, percent: int) -> None:
        """The canary InferenceService is ready: give it the first step's share."""
        self._route(percent)

    def after_promote(self, record: RolloutRecord) -> None:
        def change(body: dict[str, Any]) -> dict[str, Any] | None:
            if storage_uri(body) == record.target_storage_uri:
                return None
            body["spec"]["predictor"].setdefault("model", {})["storageUri"] = record.target_storage_uri
            return body

        update(self.dyn, ISVC_API, ISVC_KIND, self.namespace, self.name, change)
        wait_revision(self.dyn, self.namespace, self.name, "", None, 300)
        self._drain(self._route(0))
        delete(self.dyn, ISVC_API, ISVC_KIND, self.namespace, self.canary_name)

    def after_rollback(self, record: RolloutRecord) -> None:
        try:
            kube.get(self.dyn, ROUTE_API, ROUTE_KIND, self.route_name, self.namespace)
            self._drain(self._route(0))
        except kube.NotFound:
            pass
        delete(self.dyn, ISVC_API, ISVC_KIND, self.namespace, self.canary_name)

    def _drain(self, route: dict[str, Any]) -> None:
        """Wait until the Gateway accepted ``route``'s generation, then ``scale_down_delay_s`` seconds.

        A Gateway that never reports (no controller writes route status) costs ``ROUTE_ACCEPT_TIMEOUT_S``
        seconds and the delay; the canary is deleted anyway (its share is already 0 in the spec).
        """
        generation = int(route["metadata"].get("generation") or 0)

        def accepted(obj: dict[str, Any]) -> bool:
            parents = (obj.get("status") or {}).get("parents") or []
            return bool(parents) and all(
                any(c.get("type") == "Accepted" and c.get("status") == "True"
                    and int(c.get("observedGeneration") or 0) >= generation for c in p.get("conditions") or [])
                for p in parents)

        try:
            kube.wait_for(self.dyn, ROUTE_API, ROUTE_KIND, self.route_name, accepted, namespace=self.namespace,
                          timeout=ROUTE_ACCEPT_TIMEOUT_S)
        except TimeoutError:
            log.warning("HTTPRoute %s/%s: no Gateway accepted generation %d within %.0f s; deleting the old "
                        "backend after the scale-down delay anyway", self.namespace, self.route_name, generation,
                        ROUTE_ACCEPT_TIMEOUT_S)
        time.sleep(self.scale_down_delay_s)

    def ready_target(self, record: RolloutRecord) -> tuple[str, str, int | None]:
        return self.namespace, self.canary_name, None

    def serving(self, isvc: dict[str, Any]) -> dict[str, int]:
        """Weight per backend (Service name) of the route's first rule; all to stable when there is no route."""
        try:
            route = kube.get(self.dyn, ROUTE_API, ROUTE_KIND, self.route_name, self.namespace)
        except kube.NotFound:
            return {f"{self.name}-predictor": 100}
        refs = ((route.get("spec") or {}).get("rules") or [{}])[0].get("backendRefs") or []
        return {r["name"]: int(r.get("weight", 1)) for r in refs}


def routing_for(
    dyn: DynamicClient, isvc: dict[str, Any], policy_mode: str | None, gateway: tuple[str, str], source: str,
    scale_down_delay_s: float = SCALE_DOWN_DELAY_S,
) -> ServerlessRouting | RawRouting:
    """Return the routing for the InferenceService's deployment mode.

    ``gateway`` is (name, namespace) of the Gateway an HTTPRoute attaches to; ``scale_down_delay_s`` (seconds)
    how long a raw-mode InferenceService keeps serving after the route moved off it (see :class:`RawRouting`).

    Raises:
        InputError: the policy is written for the other mode (its traffic setting would be ignored:
            KServe raw mode ignores ``canaryTrafficPercent``; Knative routes ignore an HTTPRoute's weights).
    """
    mode = deployment_mode(isvc)
    if policy_mode is not None and policy_mode != mode:
        raise InputError(
            source,
            "mode",
            f"policy mode {policy_mode} but InferenceService {isvc['metadata']['name']} runs in {mode} mode, "
            f"which would ignore the policy's traffic split",
            f"set mode: {mode} in the policy",
        )
    meta = isvc["metadata"]
    if mode == "RawDeployment":
        if (isvc.get("spec") or {}).get("predictor", {}).get("canaryTrafficPercent") is not None:
            raise InputError(
                f"InferenceService {meta['namespace']}/{meta['name']}",
                "spec.predictor.canaryTrafficPercent",
                "set, but RawDeployment mode ignores it",
                "remove it; kaiops splits raw-mode traffic with an HTTPRoute",
            )
        return RawRouting(dyn, meta["namespace"], meta["name"], gateway, scale_down_delay_s)
    return ServerlessRouting(dyn, meta["namespace"], meta["name"])
