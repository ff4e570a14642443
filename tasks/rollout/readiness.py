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


def deployment_rolled(dep: dict[str, Any]) -> bool:
    """True when a Deployment's rollout is complete, as ``kubectl rollout status`` decides it
    (``DeploymentStatusViewer`` in k8s.io/kubectl ``pkg/polymorphichelpers/rollout_status.go``):
    ``status.observedGeneration >= metadata.generation``, ``updatedReplicas == spec.replicas``, no old replica
    left (``status.replicas == updatedReplicas``) and every updated replica available."""
    spec, status = dep.get("spec") or {}, dep.get("status") or {}
    want = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    updated = int(status.get("updatedReplicas") or 0)
    return (int(status.get("observedGeneration") or 0) >= int(dep["metadata"].get("generation") or 0)
            and updated >= want and int(status.get("replicas") or 0) <= updated
            and int(status.get("availableReplicas") or 0) >= updated)


def wait_deployment_rolled(dyn: DynamicClient, namespace: str, name: str, timeout: float) -> dict[str, Any]:
    """Wait until Deployment ``name`` has rolled out completely (:func:`deployment_rolled`); return it.

    KServe's ``PredictorReady`` (Deployment ``Available``) stays True through a rolling update, while the old
    Pod still serves the old model: a route moved back on ``PredictorReady`` alone sends traffic to it.

    No such Deployment (a predictor that is not one, e.g. a LeaderWorkerSet, or a stand-in without Deployments):
    returns {} at once, nothing to wait for.

    Raises:
        RevisionFailed: not rolled out within ``timeout`` seconds.
    """
    try:
        kube.get(dyn, "apps/v1", "Deployment", name, namespace)
    except kube.NotFound:
        return {}
    try:
        return kube.wait_for(dyn, "apps/v1", "Deployment", name, deployment_rolled, namespace=namespace,
                             timeout=max(1.0, timeout), what="the Deployment rolled out")
    except TimeoutError as exc:
        raise RevisionFailed(f"Deployment {namespace}/{name} not rolled out within {timeout:.0f}s: {exc}") from exc


#: Container waiting reasons that only a change of the Pod's inputs ends (a Secret, a key, a ConfigMap), not time.
CONFIG_ERRORS = ("CreateContainerConfigError",)


def pod_failure(pod: dict[str, Any]) -> str | None:
    """The first failed container of a Pod, as ``<pod>: <container> <reason> (exit <code>): <message>``, or None.

    Also a container that cannot start because its env names a missing Secret or key (``CreateContainerConfigError``,
    e.g. ``couldn't find key AWS_ACCESS_KEY_ID in Secret ns/name``): KServe v0.20.0 injects such a
    ``secretKeyRef`` for an S3 Secret whose access key id is stored under another name, and reports nothing (its
    model status stays ``InProgress``; ``PropagateModelStatus`` only reads terminated and CrashLoopBackOff states).

    Failed: an init container terminated with a non-zero exit code (now or last time), or a container in
    ``CrashLoopBackOff`` whose last run exited non-zero. ``message`` is the container's termination message
    (with ``FallbackToLogsOnError``, which KServe sets, the kubelet fills it from the log tail)."""
    status = pod.get("status") or {}
    name = pod["metadata"]["name"]
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in CONFIG_ERRORS:
            return f"{name}: {cs['name']} {waiting['reason']}: {waiting.get('message', '')}"
    for cs in status.get("initContainerStatuses") or []:
        for term in ((cs.get("state") or {}).get("terminated"), (cs.get("lastState") or {}).get("terminated")):
            if term and int(term.get("exitCode") or 0) != 0:
                return _failed(name, cs["name"], term)
    for cs in status.get("containerStatuses") or []:
        term = (cs.get("lastState") or {}).get("terminated")
        if ((cs.get("state") or {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff" and term and \
                int(term.get("exitCode") or 0) != 0:
            return _failed(name, cs["name"], term)
    return None


def _failed(pod: str, container: str, term: dict[str, Any]) -> str:
    tail = " | ".join((term.get("message") or "").strip().splitlines()[-3:])
    return f"{pod}: {container} {term.get('reason') or 'Error'} (exit {term.get('exitCode')}): {tail}"


SOURCE_URI_ANNOTATION = "internal.serving.kserve.io/storage-initializer-sourceuri"


def canary_entry_ready(isvc: dict[str, Any], entry: str) -> bool:
    """KServe's ``canaryStatuses[name=entry].ready`` (``reconcileCanaryDeployments`` sets it once the canary
    Deployment has an available replica: not proof that it runs the current spec, see
    :func:`deployment_serving`)."""
    return any(c.get("name") == entry and c.get("ready") for c in (isvc.get("status") or {}).get("canaryStatuses")
               or [])


def deployment_serving(dep: dict[str, Any], uri: str) -> bool:
    """True when a KServe predictor Deployment has rolled out completely (:func:`deployment_rolled`) with a Pod
    template for model ``uri`` (annotation ``internal.serving.kserve.io/storage-initializer-sourceuri``, which
    KServe's storage initializer injector downloads from).

    The Deployment is the truth in Standard mode: KServe v0.20.0 copies the predictor Deployment's
    ``status.observedGeneration`` into the InferenceService's ``status.observedGeneration``
    (``PropagateRawStatus``), so it is never compared with the InferenceService's ``metadata.generation``."""
    annotations = (((dep.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("annotations") or {}
    return annotations.get(SOURCE_URI_ANNOTATION) == uri and deployment_rolled(dep)


def wait_deployment_serving(dyn: DynamicClient, namespace: str, name: str, uri: str, timeout: float
                            ) -> dict[str, Any]:
    """Wait until Deployment ``name`` serves ``uri`` (:func:`deployment_serving`), failing early when it cannot
    come up (:func:`deployment_problem`). Returns the Deployment.

    Raises:
        RevisionFailed: a problem (its reason), or not serving within ``timeout`` seconds ("deadline").
    """
    import time

    deadline = time.monotonic() + max(1.0, timeout)
    while True:
        try:
            dep = kube.get(dyn, "apps/v1", "Deployment", name, namespace)
        except kube.NotFound:
            dep = None
        if dep is not None and deployment_serving(dep, uri):
            return dep
        problem = deployment_problem(dyn, namespace, name)
        if problem:
            raise RevisionFailed(f"{name} failed: {problem}")
        if time.monotonic() >= deadline:
            raise RevisionFailed(f"{namespace}/{name} not serving {uri} within the deadline ({timeout:.0f}s)")
        time.sleep(2.0)


def wait_canary_entry(dyn: DynamicClient, namespace: str, name: str, entry: str, uri: str, timeout: float
                      ) -> dict[str, Any]:
    """Wait until the ``spec.canary[]`` entry ``entry`` serves ``uri``: KServe reports it ready
    (:func:`canary_entry_ready`) and its Deployment ``<name>-<entry>-predictor`` has rolled out with that model
    (:func:`wait_deployment_serving`). Returns the InferenceService.

    KServe v0.20.0 writes no ``modelStatus`` for a canary (``CanaryStatus.modelStatus`` stays empty), so a
    canary that cannot load is found on its Deployment (:func:`deployment_problem`).

    Raises:
        RevisionFailed: the canary failed (the reason), or not ready within ``timeout`` seconds ("deadline").
    """
    import time

    began = time.monotonic()
    wait_deployment_serving(dyn, namespace, f"{name}-{entry}-predictor", uri, timeout)
    rest = max(1.0, timeout - (time.monotonic() - began))
    try:
        return kube.wait_for(dyn, ISVC_API, ISVC_KIND, name, lambda o: canary_entry_ready(o, entry),
                             namespace=namespace, timeout=rest, what=f"canary {entry} ready")
    except TimeoutError as exc:
        raise RevisionFailed(f"canary {entry} of {namespace}/{name} not ready within the deadline: {exc}") from exc


def replicaset_failure(rs: dict[str, Any]) -> str | None:
    """A ReplicaSet's ``ReplicaFailure`` condition message (the Pod could not be created), or None.

    KServe v0.20.0's Pod mutator refuses a predictor Pod whose ServiceAccount lists a Secret that does not exist
    (``admission webhook "inferenceservice.kserve-webhook-server.pod-mutator" denied the request: secrets "x" not
    found``): no Pod, no init container, and the InferenceService only says ``Predictor HTTPRoute not created``."""
    for c in (rs.get("status") or {}).get("conditions") or []:
        if c.get("type") == "ReplicaFailure" and c.get("status") == "True":
            return f"ReplicaSet {rs['metadata']['name']}: {c.get('reason', '')}: {c.get('message', '')}"
    return None


def deployment_problem(dyn: DynamicClient, namespace: str, deployment: str) -> str | None:
    """Why a predictor Deployment's Pods do not come up, when only a change of inputs can fix it: a ReplicaSet of
    the Deployment that cannot create Pods (:func:`replicaset_failure`) or a Pod that failed
    (:func:`pod_failure`). None when the Deployment does not exist or nothing is wrong (yet)."""
    try:
        dep = kube.get(dyn, "apps/v1", "Deployment", deployment, namespace)
    except kube.NotFound:
        return None
    labels = ((dep.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    if not selector:
        return None
    uid = dep["metadata"].get("uid")
    for rs in kube.list_objects(dyn, "apps/v1", "ReplicaSet", namespace, label_selector=selector):
        owners = {o.get("uid") for o in rs["metadata"].get("ownerReferences") or []}
        if uid in owners and int((rs.get("spec") or {}).get("replicas") or 0) > 0:
            failure = replicaset_failure(rs)
            if failure:
                return failure
    for pod in kube.list_objects(dyn, "v1", "Pod", namespace, label_selector=selector):
        failure = pod_failure(pod)
        if failure:
            return failure
    return None
