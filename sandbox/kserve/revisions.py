"""Pure KServe/Knative bookkeeping on dicts: revision identity, traffic, and the InferenceService status.

No I/O here: the controller feeds in the InferenceService, what it knows of each revision and the previous
status, and writes back what :func:`compute_status` returns. The rules copy KServe v0.20:

- ``pkg/controller/v1beta1/inferenceservice/reconcilers/knative/ksvc_reconciler.go`` (``createKnativeService``):
  the route's traffic targets from ``canaryTrafficPercent`` and ``latestRolledoutRevision``; tag ``prev`` on
  the rolled-out revision, tag ``latest`` only with annotation ``serving.kserve.io/enable-tag-routing: "true"``.
- ``pkg/apis/serving/v1beta1/inference_service_status.go`` (``PropagateStatus``, ``PropagateRawStatus``,
  ``PropagateCrossComponentStatus``, ``PropagateModelStatus``, ``UpdateModelRevisionStates``): how the
  Knative Service status becomes the InferenceService status, and ``modelStatus``.
- Knative serving: a traffic target with ``latestRevision: true`` resolves to the configuration's
  ``latestReadyRevisionName``; a Service is Ready when ``ConfigurationsReady`` and ``RoutesReady`` are.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

DEPLOYMENT_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
TAG_ROUTING_ANNOTATION = "serving.kserve.io/enable-tag-routing"
SUPPORTED_FORMATS = ("sklearn",)  # model formats the sandbox's model server loads (joblib/pickle)


class DeploymentMode(StrEnum):
    """How KServe deploys the predictor."""

    SERVERLESS = "Serverless"  # Knative Service: revisions, traffic split, canaryTrafficPercent honoured
    RAW = "RawDeployment"  # one Deployment; canaryTrafficPercent ignored
    STANDARD = "Standard"  # v0.20's new name for RawDeployment; same behaviour


class RevisionPhase(StrEnum):
    """Where one predictor revision is in its life (the pod's view)."""

    PENDING = "Pending"  # created, storage initializer not started yet
    LOADING = "Loading"  # storage initializer or model server start-up running
    READY = "Ready"  # model server answers its readiness check
    FAILED = "Failed"  # storage initializer or model server failed
    INVALID = "Invalid"  # the predictor spec cannot be served at all (no runtime for the model format)


class ModelState(StrEnum):
    """KServe ``ModelState``."""

    PENDING = "Pending"  # model not yet registered
    LOADING = "Loading"  # model is loading
    LOADED = "Loaded"  # at least one copy of the model is loaded
    FAILED_TO_LOAD = "FailedToLoad"  # all copies failed to load


class TransitionStatus(StrEnum):
    """KServe ``TransitionStatus``."""

    UP_TO_DATE = "UpToDate"  # predictor reflects the current spec
    IN_PROGRESS = "InProgress"  # waiting for the target model to reach the active state
    BLOCKED_BY_FAILED_LOAD = "BlockedByFailedLoad"  # target model failed to load
    INVALID_SPEC = "InvalidSpec"  # target predictor spec failed validation


class FailureReason(StrEnum):
    """KServe ``FailureReason`` values the sandbox produces."""

    MODEL_LOAD_FAILED = "ModelLoadFailed"  # storage initializer or model server failed to load the model
    NO_SUPPORTING_RUNTIME = "NoSupportingRuntime"  # no serving runtime supports the model format


@dataclass
class Revision:
    """What the controller knows of one revision.

    Attributes:
        name: ``<isvc>-predictor-0000N`` (Serverless) or ``<isvc>-predictor`` generation (Raw).
        phase: see :class:`RevisionPhase`.
        message: failure message (storage initializer / model server log tail), empty otherwise.
        exit_code: exit status of the failed step (0 when not failed).
        reason: a failure reason (:class:`FailureReason`) when phase is FAILED or INVALID.
    """

    name: str
    phase: RevisionPhase
    message: str = ""
    exit_code: int = 0
    reason: FailureReason | None = None


def deployment_mode(isvc: dict[str, Any]) -> DeploymentMode:
    """The mode from annotation ``serving.kserve.io/deploymentMode`` (default Serverless)."""
    value = ((isvc.get("metadata") or {}).get("annotations") or {}).get(DEPLOYMENT_MODE_ANNOTATION, "")
    for mode in DeploymentMode:
        if value == mode.value:
            return mode
    return DeploymentMode.SERVERLESS


def predictor_hash(isvc: dict[str, Any]) -> str:
    """Hash of what makes a new Knative revision: the predictor template (every predictor field except
    ``canaryTrafficPercent``, which lands in the Knative route, not the configuration). 12 hex chars."""
    predictor = copy.deepcopy((isvc.get("spec") or {}).get("predictor") or {})
    predictor.pop("canaryTrafficPercent", None)
    blob = json.dumps(predictor, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def revision_name(isvc_name: str, number: int) -> str:
    """Knative revision name KServe's predictor gets: ``<isvc>-predictor-0000N`` (5 digits)."""
    return f"{isvc_name}-predictor-{number:05d}"


def model_format(isvc: dict[str, Any]) -> str:
    """``predictor.model.modelFormat.name`` or the legacy framework key (``predictor.sklearn``); '' if none."""
    predictor = (isvc.get("spec") or {}).get("predictor") or {}
    model = predictor.get("model")
    if isinstance(model, dict):
        return str((model.get("modelFormat") or {}).get("name", "")).lower()
    for key in ("sklearn", "xgboost", "lightgbm", "tensorflow", "pytorch", "onnx", "triton", "huggingface"):
        if key in predictor:
            return key
    return ""


def storage_uri(isvc: dict[str, Any]) -> str:
    """``predictor.model.storageUri`` (or the legacy ``predictor.<framework>.storageUri``); '' if none."""
    predictor = (isvc.get("spec") or {}).get("predictor") or {}
    for key, value in predictor.items():
        if isinstance(value, dict) and value.get("storageUri") and key in ("model", model_format(isvc)):
            return str(value["storageUri"])
    return ""


def served_model_name(isvc: dict[str, Any]) -> str:
    """The model name the server registers: ``--model_name`` from ``predictor.model.args`` when given (KServe's
    runtimes pass ``--model_name={{.Name}}`` first and append the user's args, so a later one wins), else the
    InferenceService name."""
    args = [str(a) for a in ((((isvc.get("spec") or {}).get("predictor") or {}).get("model") or {}).get("args")
                             or [])]
    name = isvc["metadata"]["name"]
    for i, arg in enumerate(args):
        if arg.startswith("--model_name="):
            name = arg.split("=", 1)[1] or name
        elif arg == "--model_name" and i + 1 < len(args):
            name = args[i + 1]
    return name


def series_name(isvc_name: str, revision: str, mode: DeploymentMode) -> str:
    """``revision_name`` label of the queue-proxy-style series of a revision. Serverless: the Knative revision.
    Raw/Standard: the one Deployment ``<isvc>-predictor`` (KServe raw mode has no revisions in status, only the
    Deployment's rollout number, so its series are per Deployment and keep their name across updates)."""
    return revision if mode is DeploymentMode.SERVERLESS else f"{isvc_name}-predictor"


def canary_percent(isvc: dict[str, Any]) -> int | None:
    """``predictor.canaryTrafficPercent`` (0..100) or None when the field is absent."""
    value = ((isvc.get("spec") or {}).get("predictor") or {}).get("canaryTrafficPercent")
    return None if value is None else int(value)


def route_targets(isvc: dict[str, Any], prior_predictor: dict[str, Any]) -> list[dict[str, Any]]:
    """The Knative route spec KServe writes (``createKnativeService``), before Knative resolves it.

    Args:
        isvc: the InferenceService.
        prior_predictor: ``status.components.predictor`` as it was before this reconcile.

    Returns:
        Targets ``{"latestRevision": bool, "percent": int, "tag"?: str, "revisionName"?: str}``.
    """
    canary = canary_percent(isvc)
    last_rolled_out = prior_predictor.get("latestRolledoutRevision", "")
    annotations = (isvc.get("metadata") or {}).get("annotations") or {}
    tag_routing = annotations.get(TAG_ROUTING_ANNOTATION) == "true"
    latest: dict[str, Any] = {"latestRevision": True, "percent": 100}
    if tag_routing:
        latest["tag"] = "latest"
    if canary is not None and last_rolled_out:
        latest["percent"] = canary
        targets = [latest]
        if canary < 100:
            targets.append(
                {"tag": "prev", "revisionName": last_rolled_out, "latestRevision": False, "percent": 100 - canary}
            )
        return targets
    return [latest]


def latest_ready(revisions: list[Revision]) -> str:
    """Knative's ``latestReadyRevisionName``: the newest revision that is ready ('' when none is).

    ``revisions`` are ordered oldest first.
    """
    for rev in reversed(revisions):
        if rev.phase is RevisionPhase.READY:
            return rev.name
    return ""


def resolve_traffic(targets: list[dict[str, Any]], latest_ready_name: str) -> list[dict[str, Any]]:
    """Knative's route status: ``latestRevision`` targets resolved to the latest ready revision.

    Returns an empty list when a ``latestRevision`` target cannot be resolved (no ready revision yet).
    """
    out = []
    for target in targets:
        resolved = dict(target)
        if target.get("latestRevision"):
            if not latest_ready_name:
                return []
            resolved["revisionName"] = latest_ready_name
        out.append(
            {k: resolved[k] for k in ("tag", "revisionName", "latestRevision", "percent") if k in resolved}
        )
    return out


def propagate_rollout(prior: dict[str, Any], latest_created: str, latest_ready_name: str,
                      traffic: list[dict[str, Any]]) -> tuple[str, str]:
    """``PropagateStatus``'s rollout bookkeeping; returns ``(latestRolledoutRevision, previousRolledoutRevision)``."""
    rolled = prior.get("latestRolledoutRevision", "")
    previous = prior.get("previousRolledoutRevision", "")
    per_revision: dict[str, int] = {}
    for t in traffic:
        per_revision[t["revisionName"]] = per_revision.get(t["revisionName"], 0) + int(t.get("percent", 0))
    for t in traffic:
        if t["revisionName"] != latest_ready_name or not t.get("latestRevision"):
            continue
        if rolled != latest_ready_name:
            if int(t.get("percent", 0)) == 100:
                previous, rolled = rolled, latest_ready_name
        elif (latest_ready_name == latest_created and int(t.get("percent", 0)) < 100
              and per_revision.get(t["revisionName"]) == 100 and previous):
            # rolled out at 100 % and then rolled back while the split sums to 100 on this revision
            rolled = previous
    return rolled, previous


def _cond(type_: str, status: str, reason: str = "", message: str = "") -> dict[str, Any]:
    cond: dict[str, Any] = {"type": type_, "status": status}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def _knative_conditions(config_name: str, revisions: list[Revision], traffic: list[dict[str, Any]]
                        ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Knative Service ``ConfigurationsReady`` and ``RoutesReady`` from the latest created revision."""
    newest = revisions[-1]
    if newest.phase is RevisionPhase.READY:
        config = _cond("ConfigurationsReady", "True")
    elif newest.phase in (RevisionPhase.FAILED, RevisionPhase.INVALID):
        config = _cond("ConfigurationsReady", "False", "RevisionFailed",
                       f'Revision "{newest.name}" failed with message: {newest.message or newest.phase.value}.')
    else:
        config = _cond("ConfigurationsReady", "Unknown", "Deploying" if newest.phase is RevisionPhase.LOADING
                       else "RevisionMissing", f'Revision "{newest.name}" is not ready yet.')
    if traffic:
        route = _cond("RoutesReady", "True")
    elif config["status"] == "False":
        route = _cond("RoutesReady", "False", "RevisionMissing",
                      f'Configuration "{config_name}" does not have any ready Revision.')
    else:
        route = _cond("RoutesReady", "Unknown", "RevisionMissing",
                      f'Configuration "{config_name}" is waiting for a Revision to become ready.')
    return config, route


def _and(type_: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Knative living-condition-set rule: True when all are True, else the first False, else Unknown."""
    for part in parts:
        if part["status"] == "False":
            return _cond(type_, "False", part.get("reason", ""), part.get("message", ""))
    for part in parts:
        if part["status"] != "True":
            return _cond(type_, "Unknown", part.get("reason", ""), part.get("message", ""))
    return _cond(type_, "True")


def _model_status(prior: dict[str, Any], newest: Revision, ready: bool, up_to_date: bool,
                  ready_copies: int) -> dict[str, Any]:
    """``PropagateModelStatus`` + ``UpdateModelRevisionStates`` for the newest revision."""
    states = dict((prior.get("modelStatus") or {}).get("states") or {})
    failure = (prior.get("modelStatus") or {}).get("lastFailureInfo")
    active = states.get("activeModelState", ModelState.PENDING.value)
    if newest.phase is RevisionPhase.INVALID:
        transition, target = TransitionStatus.INVALID_SPEC, ModelState.FAILED_TO_LOAD
        failure = {"reason": (newest.reason or FailureReason.NO_SUPPORTING_RUNTIME).value,
                   "message": newest.message, "modelRevisionName": newest.name}
    elif newest.phase is RevisionPhase.FAILED:
        transition, target = TransitionStatus.BLOCKED_BY_FAILED_LOAD, ModelState.FAILED_TO_LOAD
        failure = {"reason": (newest.reason or FailureReason.MODEL_LOAD_FAILED).value, "message": newest.message,
                   "exitCode": newest.exit_code, "location": newest.name, "modelRevisionName": newest.name}
    elif ready and up_to_date:
        transition, target, active = TransitionStatus.UP_TO_DATE, ModelState.LOADED, ModelState.LOADED.value
    elif newest.phase is RevisionPhase.PENDING:
        transition, target = TransitionStatus.IN_PROGRESS, ModelState.PENDING
    else:
        transition, target = TransitionStatus.IN_PROGRESS, ModelState.LOADING
    out: dict[str, Any] = {
        "transitionStatus": transition.value,
        "states": {"activeModelState": active, "targetModelState": target.value},
        "copies": {"failedCopies": 0, "totalCopies": ready_copies},
    }
    if failure:
        out["lastFailureInfo"] = {k: v for k, v in failure.items() if v not in (None, "")}
    return out


def compute_status(
    isvc: dict[str, Any],
    revisions: list[Revision],
    prior_status: dict[str, Any],
    url: str,
    now: str,
) -> dict[str, Any]:
    """The whole ``status`` KServe would write for ``isvc``.

    Args:
        isvc: the InferenceService (``metadata``, ``spec``).
        revisions: its revisions, oldest first; the last is the latest created (must not be empty).
        prior_status: the status currently stored (``{}`` for a new object).
        url: the router's loopback URL (``http://127.0.0.1:<port>``), shown once the predictor is ready.
        now: RFC 3339 timestamp used as ``lastTransitionTime`` of conditions whose status changed.

    Returns:
        The status dict (``observedGeneration``, ``conditions``, ``components.predictor``, ``modelStatus``,
        ``url``, ``address``, ``deploymentMode``). In Serverless mode ``components.predictor.traffic`` is the
        split the router must apply; in Raw mode all traffic goes to the newest ready revision.
    """
    mode = deployment_mode(isvc)
    name = isvc["metadata"]["name"]
    config_name = f"{name}-predictor"
    prior_pred = dict(((prior_status.get("components") or {}).get("predictor")) or {})
    newest = revisions[-1]
    ready_name = latest_ready(revisions)
    # KServe updates the stored component status in place: url/address stay from before until ready again
    pred: dict[str, Any] = {k: prior_pred[k] for k in ("url", "address") if k in prior_pred}
    conditions: list[dict[str, Any]]
    if mode is DeploymentMode.SERVERLESS:
        traffic = resolve_traffic(route_targets(isvc, prior_pred), ready_name)
        rolled, previous = propagate_rollout(prior_pred, newest.name, ready_name, traffic)
        config, route = _knative_conditions(config_name, revisions, traffic)
        service_ready = _and("Ready", [config, route])
        pred = {"latestCreatedRevision": newest.name}
        if ready_name:
            pred["latestReadyRevision"] = ready_name
        if rolled:
            pred["latestRolledoutRevision"] = rolled
        if previous:
            pred["previousRolledoutRevision"] = previous
        if traffic:
            pred["traffic"] = traffic
        predictor_ready = {**service_ready, "type": "PredictorReady"}
        conditions = [
            predictor_ready,
            {**route, "type": "PredictorRouteReady"},
            {**config, "type": "PredictorConfigurationReady"},
            _cross("RoutesReady", route, "PredictorRouteReady"),
            _cross("LatestDeploymentReady", config, "PredictorConfigurationReady"),
        ]
        up_to_date = ready_name == newest.name
    else:
        predictor_ready = _raw_ready(config_name, newest, ready_name)
        conditions = [predictor_ready]
        up_to_date = True
    ready = predictor_ready["status"] == "True"
    if ready:
        pred["url"] = url
        pred["address"] = {"url": url}
    if ready_name:
        ingress = _cond("IngressReady", "True")
    else:
        ingress = _cond("IngressReady", "False", "PredictorNotReady", "Predictor ingress not created")
    conditions.append(ingress)
    conditions.append(_and("Ready", [predictor_ready, ingress]))
    status: dict[str, Any] = {
        "observedGeneration": isvc["metadata"].get("generation", 1),
        "deploymentMode": mode.value,
        "conditions": _stamp(conditions, prior_status.get("conditions") or [], now),
        "components": {"predictor": pred},
        "modelStatus": _model_status(prior_status, newest, ready, up_to_date, 1 if ready_name else 0),
    }
    if ready_name:
        status["url"] = url
        status["address"] = {"url": url}
    return status


def _cross(type_: str, component: dict[str, Any], component_type: str) -> dict[str, Any]:
    """``PropagateCrossComponentStatus`` for the predictor alone."""
    if component["status"] == "True":
        return _cond(type_, "True")
    return _cond(type_, component["status"], f"{component_type} not ready")


def _raw_ready(deployment: str, newest: Revision, ready_name: str) -> dict[str, Any]:
    """``PropagateRawStatus``: PredictorReady from the Deployment's Available/Progressing conditions."""
    if newest.phase is RevisionPhase.READY:
        return _cond("PredictorReady", "True", "NewReplicaSetAvailable",
                     f'ReplicaSet "{deployment}" has successfully progressed.')
    if newest.phase in (RevisionPhase.FAILED, RevisionPhase.INVALID):
        return _cond("PredictorReady", "False", "ProgressDeadlineExceeded",
                     f'ReplicaSet "{deployment}" has timed out progressing. {newest.message}'.strip())
    if ready_name:
        return _cond("PredictorReady", "Unknown", "ReplicaSetUpdated",
                     f'ReplicaSet "{deployment}" is progressing.')
    return _cond("PredictorReady", "False", "MinimumReplicasUnavailable",
                 "Deployment does not have minimum availability.")


def _stamp(conditions: list[dict[str, Any]], prior: list[dict[str, Any]], now: str) -> list[dict[str, Any]]:
    """Keep ``lastTransitionTime`` where a condition's status did not change; set ``now`` where it did."""
    before = {c.get("type"): c for c in prior}
    out = []
    for cond in sorted(conditions, key=lambda c: c["type"]):
        old = before.get(cond["type"])
        stamp = old.get("lastTransitionTime") if old and old.get("status") == cond["status"] else None
        out.append({**cond, "lastTransitionTime": stamp or now})
    return out


def traffic_weights(status: dict[str, Any], revisions: list[Revision], mode: DeploymentMode) -> dict[str, int]:
    """What the router applies: revision name -> percent (0..100), only revisions that are ready.

    Serverless: ``status.components.predictor.traffic`` summed per revision. Raw: 100 to the newest ready.
    """
    if mode is not DeploymentMode.SERVERLESS:
        ready_name = latest_ready(revisions)
        return {ready_name: 100} if ready_name else {}
    ready = {r.name for r in revisions if r.phase is RevisionPhase.READY}
    weights: dict[str, int] = {}
    for t in ((status.get("components") or {}).get("predictor") or {}).get("traffic") or []:
        if t.get("revisionName") in ready:
            weights[t["revisionName"]] = weights.get(t["revisionName"], 0) + int(t.get("percent", 0))
    return weights


def referenced(status: dict[str, Any], revisions: list[Revision], mode: DeploymentMode) -> set[str]:
    """Revisions whose processes must keep running: in traffic (any percent), the latest ready, the newest."""
    keep = {revisions[-1].name} if revisions else set()
    ready_name = latest_ready(revisions)
    if ready_name:
        keep.add(ready_name)
    if mode is DeploymentMode.SERVERLESS:
        for t in ((status.get("components") or {}).get("predictor") or {}).get("traffic") or []:
            keep.add(t.get("revisionName", ""))
    return keep


def same_status(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """True when two statuses differ at most in condition ``lastTransitionTime`` (no write needed)."""

    def strip(status: dict[str, Any]) -> str:
        s = copy.deepcopy(status)
        for c in s.get("conditions") or []:
            c.pop("lastTransitionTime", None)
            c.pop("severity", None)
        return json.dumps(s, sort_keys=True)

    return strip(a) == strip(b)
