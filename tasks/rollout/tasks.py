"""Prefect tasks of the rollout, rollback and guard flows: one I/O concern each, one transition each.

Every task that changes the cluster reads the record from the InferenceService, makes one transition and
writes it back (with the lease renewed) in one optimistic-concurrency write, so a killed run leaves a
consistent record behind for a resumed run or for the guard.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import task

from configs.canary import CanaryPolicy, load_policy
from tasks import kube
from tasks.analysis import Decision, StepAnalysis, analyse_step
from tasks.errors import PermanentError, TemporaryError, io_retries
from tasks.metrics import (
    PrometheusProvider,
    QueryContext,
    collect_samples,
    failed_queries,
    monotone_counts,
    preflight,
)
from tasks.rollout import record as record_io
from tasks.rollout.isvc import check_record_not_propagated, deployment_mode, get_isvc, list_isvcs, storage_uri
from tasks.rollout.readiness import RevisionFailed
from tasks.rollout.report import write_report
from tasks.rollout.routing import Routing, routing_for
from tasks.rollout.state import (
    Action,
    HumanChoice,
    LeaseHeld,
    Phase,
    RolloutRecord,
    acquire,
    after_analysis,
    after_human,
    iso,
    look_record,
    parse_time,
    released,
    renew,
)

_IO = io_retries()  # 3 retries, 2 s apart, temporary errors only


def _dyn(kubeconfig: str | None = None):
    return kube.connect(kubeconfig)


def now() -> datetime:
    """The current time, UTC."""
    return datetime.now(UTC)


def holder_id() -> str:
    """Who holds the lease: the Prefect flow run id when inside one, else host/pid/random."""
    try:
        from prefect.runtime import flow_run

        if flow_run.id:
            return f"flow-run/{flow_run.id}"
    except Exception:
        pass
    return f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"


@task(name="validate-policy", **_IO)
def validate_policy(policy_file: str, prometheus_url: str) -> CanaryPolicy:
    """Load the policy and check its metrics and labels exist in Prometheus (nothing changes).

    Raises:
        InputError: bad policy file or a template naming a missing metric/label.
        TemporaryError: Prometheus unreachable (retried).
    """
    policy = load_policy(policy_file)
    provider = PrometheusProvider(prometheus_url)
    try:
        preflight(provider, policy, policy_file)
    finally:
        provider.close()
    return policy


@task(name="check-target", **_IO)
def check_target(namespace: str, name: str, policy: CanaryPolicy, policy_file: str, storage_uri: str | None) -> str:
    """Refuse before any change: ``storage_uri`` must be one the storage initializer reads, and the
    InferenceService must exist and run in the policy's mode, and KServe must not copy the rollout record's
    annotations into the predictor Pods (:func:`tasks.rollout.isvc.check_record_not_propagated`).

    Returns:
        the deployment mode.

    Raises:
        InputError: a malformed storage URI (:func:`configs.inputs.parse_storage_uri`), a mode mismatch, or a
            KServe configuration that would restart the predictor at every record write.
        NotFound: no such InferenceService.
    """
    if storage_uri is not None:
        from configs.inputs import parse_storage_uri

        parse_storage_uri(storage_uri, source="<parameter>", field="storage_uri")
    dyn = _dyn()
    isvc = get_isvc(dyn, namespace, name)
    check_record_not_propagated(dyn)
    routing_for(dyn, isvc, policy.mode.value, (policy.gateway.name, policy.gateway.namespace), policy_file,
                way=policy.gateway.way.value)
    return deployment_mode(isvc)


@task(name="ensure-concurrency-limit", **_IO)
def ensure_concurrency_limit(limit_name: str) -> None:
    """Create the Prefect global concurrency limit ``limit_name`` with 1 slot unless it exists."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(limit_name)
        except ObjectNotFound:
            with contextlib.suppress(ObjectAlreadyExists):
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=limit_name, limit=1))


def concurrency_name(namespace: str, name: str) -> str:
    """The Prefect global concurrency limit serialising rollouts of one InferenceService."""
    return f"rollout-{namespace}-{name}"


@task(name="acquire-lease", **_IO)
def acquire_lease(namespace: str, name: str, holder: str, policy: CanaryPolicy, storage_uri: str) -> RolloutRecord:
    """Take the lease annotation (or renew our own) and return the record to continue from.

    Raises:
        LeaseHeld: another rollout holds a valid lease, or a dead one waits for the guard.
    """
    dyn = _dyn()

    def change(record: RolloutRecord | None) -> RolloutRecord:
        new = acquire(record, holder, now(), policy.lease_seconds)
        if new.phase is Phase.INITIALIZED and not new.target_storage_uri:
            new = new.model_copy(update={"target_storage_uri": storage_uri, "mode": policy.mode.value})
        return new

    _, record = record_io.write_record(dyn, namespace, name, change)
    assert record is not None
    return record


def _routing(dyn: Any, namespace: str, name: str, policy: CanaryPolicy) -> tuple[dict[str, Any], Routing]:
    isvc = get_isvc(dyn, namespace, name)
    return isvc, routing_for(dyn, isvc, None, (policy.gateway.name, policy.gateway.namespace), "-",
                             policy.gateway.scale_down_delay_seconds, way=policy.gateway.way.value)


def _ours(holder: str, ttl: float):
    def check(record: RolloutRecord | None) -> RolloutRecord:
        if record is None:
            raise LeaseHeld("the rollout record disappeared from the InferenceService")
        return renew(record, holder, now(), ttl)

    return check


@task(name="start-canary", **_IO)
def start_canary(namespace: str, name: str, holder: str, policy: CanaryPolicy) -> RolloutRecord:
    """Apply the new storageUri with the first step's traffic; remember what served before (one write)."""
    dyn = _dyn()
    isvc, routing = _routing(dyn, namespace, name, policy)
    first = policy.steps[0]

    def change(record: RolloutRecord | None) -> RolloutRecord:
        rec = _ours(holder, policy.lease_seconds)(record)
        return rec.model_copy(
            update={
                "phase": Phase.WAITING_READY,
                "step": 0,
                "traffic": first,
                "previous_storage_uri": storage_uri(isvc),
                "previous_revision": routing.stable_revision(isvc),
                "started": iso(now()),
            }
        )

    _, current = record_io.read_record(dyn, namespace, name)
    assert current is not None
    target = current.target_storage_uri
    obj, record = record_io.write_record(dyn, namespace, name, change, routing.start_spec(target, first))
    assert record is not None
    routing.after_start(obj, target, first)
    record_io.record_event(dyn, obj, "Started", f"canary {target} at {first}% (was {record.previous_storage_uri})")
    return record


@task(name="wait-ready")
def wait_ready(namespace: str, name: str, holder: str, policy: CanaryPolicy) -> RolloutRecord:
    """Wait (watch, renewing the lease) for the new revision; Progressing when ready, RollingBack when it
    failed to load or missed the deadline (the record's message carries KServe's reason)."""
    dyn = _dyn()
    _, record = record_io.read_record(dyn, namespace, name)
    assert record is not None
    isvc, routing = _routing(dyn, namespace, name, policy)
    deadline = parse_time(record.started).timestamp() + policy.ready_deadline_seconds
    target_ns, target_name, _ = routing.ready_target(record)
    failure = ""
    while True:
        remaining = deadline - time.time()
        chunk = min(max(remaining, 1.0), policy.lease_seconds / 3)
        try:
            routing.wait_canary(record, chunk)
            break
        except RevisionFailed as exc:
            if "deadline" not in str(exc) or remaining <= chunk:
                failure = str(exc) if "deadline" not in str(exc) else _late(dyn, target_ns, target_name, policy)
                break
        record_io.write_record(dyn, namespace, name, _ours(holder, policy.lease_seconds))
    isvc, routing = _routing(dyn, namespace, name, policy)
    if failure:
        update = {"phase": Phase.ROLLING_BACK, "message": failure}
    else:
        canary_rev, _ = routing.revisions(isvc)
        start = now()
        update = {"phase": Phase.PROGRESSING, "canary_revision": canary_rev, "canary_started": iso(start),
                  "last_look": iso(start)}

    def change(rec: RolloutRecord | None) -> RolloutRecord:
        return _ours(holder, policy.lease_seconds)(rec).model_copy(update=update)

    obj, record = record_io.write_record(dyn, namespace, name, change)
    if not failure:
        routing.after_ready(record.traffic)
    reason = "RevisionFailed" if failure else "RevisionReady"
    message = failure or f"revision {record.canary_revision} ready"
    record_io.record_event(dyn, obj, reason, message, warning=bool(failure))
    return record


def _late(dyn, namespace: str, name: str, policy: CanaryPolicy) -> str:
    """``not ready within 60s: Ready=False (RevisionMissing: ...); events: ...``: the deadline, with what the
    InferenceService says about itself (its Ready condition's reason and message, its recent Events)."""
    try:
        isvc = get_isvc(dyn, namespace, name)
    except Exception:  # the report must not fail on the read: the deadline alone still says what happened
        isvc = None
    ready = kube.condition(isvc or {}, "Ready")
    said = kube.explain(dyn, "InferenceService", name, namespace, isvc)
    head = f"not ready within {policy.ready_deadline_seconds:.0f}s"
    if ready is not None:
        head += f": Ready={ready.get('status')} ({ready.get('reason') or '-'}: {ready.get('message') or '-'})"
    return f"{head}; {namespace}/{name} says: {said}"


@task(name="wait-interval")
def wait_interval(namespace: str, name: str, holder: str, policy: CanaryPolicy, seconds: float) -> RolloutRecord:
    """Sleep ``seconds`` (until the next look), renewing the lease every third of its length."""
    dyn = _dyn()
    end = time.time() + seconds
    record = None
    while True:
        _, record = record_io.write_record(dyn, namespace, name, _ours(holder, policy.lease_seconds))
        left = end - time.time()
        if left <= 0:
            return record
        time.sleep(min(left, policy.lease_seconds / 3))


def next_look_in(record: RolloutRecord, policy: CanaryPolicy) -> float:
    """Seconds until the next look is due (warm-up before the first, then one interval after the last)."""
    first = not record.history
    base = parse_time(record.last_look or record.canary_started).timestamp()
    due = base + policy.interval_seconds + (policy.warmup_seconds if first else 0.0)
    return max(0.0, due - time.time())


def retry_queries(failed: str, attempt: int, retries: int) -> str | None:
    """Whether a look whose queries failed (``failed``: :func:`tasks.metrics.failed_queries`) is tried again
    before the failure counts: the reason to retry while attempts are left (``attempt`` 1-based, of
    ``retries + 1``), None when every query answered or this is the last attempt (then it counts)."""
    if not failed or attempt < 1 or attempt > retries:
        return None
    return f"prometheus queries failed (attempt {attempt} of {retries + 1}; retried before it counts): {failed}"


@task(name="analyse-look", **_IO)
def analyse_look(
    namespace: str, name: str, holder: str, policy: CanaryPolicy, prometheus_url: str
) -> tuple[RolloutRecord, Action, StepAnalysis]:
    """Query Prometheus, analyse, make the transition and write it with the traffic change in one write.

    Transient errors before the write are retried (Prefect task retries, ``_IO``) before they count: an
    apiserver error (TemporaryError) re-runs the look, and failed Prometheus queries re-run it too until the
    last attempt, where they count toward ``query_failure_limit`` as before. The write is the task's last
    retried step; the traffic change and the Event after it are their own retried task (:func:`after_look`),
    so a look is never written twice.
    """
    dyn = _dyn()
    isvc, record = record_io.read_record(dyn, namespace, name)
    assert record is not None
    _, routing = _routing(dyn, namespace, name, policy)
    canary_rev, baseline_rev = routing.look_revisions(isvc, record)
    ctx = QueryContext(namespace=namespace, isvc=name, canary_revision=canary_rev, baseline_revision=baseline_rev)
    t = time.time()
    provider = PrometheusProvider(prometheus_url)
    try:
        samples = collect_samples(
            provider, policy, ctx, now=t, canary_start=parse_time(record.canary_started).timestamp(),
            last_look=parse_time(record.last_look or record.canary_started).timestamp(),
            state=record.analysis, history=True,
        )
    finally:
        provider.close()
    samples = monotone_counts(samples, record.analysis, policy)
    from prefect.runtime import task_run

    if why := retry_queries(failed_queries(samples), task_run.run_count if task_run.id else 0, _IO["retries"]):
        raise TemporaryError(why)
    final = record.step >= len(policy.steps) - 1
    analysis = analyse_step(policy.analysis_policy(), record.analysis, samples, final_step=final)
    look = look_record(analysis, policy.analysis_policy().metrics, step=record.step, traffic=record.traffic,
                       at=iso(now())).model_copy(update={"look": len(record.history) + 1})
    looked = record.model_copy(update={"analysis": analysis.state, "history": [*record.history, look],
                                       "last_look": iso(now()), "message": analysis.reason})
    new, action = after_analysis(looked, analysis.decision, policy.steps, policy.approval_steps, policy.max_looks)

    def change(rec: RolloutRecord | None) -> RolloutRecord:
        ours = _ours(holder, policy.lease_seconds)(rec)
        return new.model_copy(update={"lease_expires": ours.lease_expires})

    spec_change = routing.traffic_spec(new.traffic) if action is Action.SET_TRAFFIC else None
    _, written = record_io.write_record(dyn, namespace, name, change, spec_change)
    warning = analysis.decision in (Decision.ROLLBACK, Decision.PAUSE_FOR_HUMAN)
    try:
        after_look(namespace, name, policy, new.traffic if action is Action.SET_TRAFFIC else None,
                   analysis.decision.value, f"look {look.look} at {look.traffic}%: {analysis.reason}", warning)
    except Exception as exc:  # the look is written: never re-run it (that would write a second look)
        raise PermanentError(f"look {look.look} written, then: {exc.__class__.__name__}: {exc}") from None
    assert written is not None
    return written, action, analysis


@task(name="after-look", **_IO)
def after_look(namespace: str, name: str, policy: CanaryPolicy, traffic: int | None, reason: str, message: str,
               warning: bool) -> None:
    """After a look's write: move the traffic outside the spec when the routing needs it (``traffic``: the
    new percent, None when unchanged) and record the look's Event. Both are idempotent, so retried."""
    dyn = _dyn()
    isvc, routing = _routing(dyn, namespace, name, policy)
    if traffic is not None:
        routing.after_traffic(traffic)
    record_io.record_event(dyn, isvc, reason, message, warning=warning)


@task(name="decide-human")
def decide_human(
    namespace: str, name: str, holder: str, policy: CanaryPolicy, choice: HumanChoice | None, comment: str = ""
) -> RolloutRecord:
    """Apply a human decision (None = timed out: roll back) as one transition with its traffic change.

    ``comment`` (the form's "why", up to 500 characters) goes into the Event and the record's message.
    """
    dyn = _dyn()
    _, record = record_io.read_record(dyn, namespace, name)
    assert record is not None
    _, routing = _routing(dyn, namespace, name, policy)
    new, action = after_human(record, choice, policy.steps)
    if comment:
        new = new.model_copy(update={"message": f"{new.message}; human: {comment}".lstrip("; ")})

    def change(rec: RolloutRecord | None) -> RolloutRecord:
        return new.model_copy(update={"lease_expires": _ours(holder, policy.lease_seconds)(rec).lease_expires})

    spec_change = routing.traffic_spec(new.traffic) if action is Action.SET_TRAFFIC else None
    obj, written = record_io.write_record(dyn, namespace, name, change, spec_change)
    if action is Action.SET_TRAFFIC:
        routing.after_traffic(new.traffic)
    reason = f"human-{choice.value if choice else 'timeout'}"
    record_io.record_event(dyn, obj, reason, written.message if written else "")
    return written


@task(name="promote", **_IO)
def promote(namespace: str, name: str, holder: str, policy: CanaryPolicy) -> RolloutRecord:
    """Make the canary the stable revision (Serverless: remove canaryTrafficPercent) and release the lease."""
    dyn = _dyn()
    _, record = record_io.read_record(dyn, namespace, name)
    assert record is not None
    _, routing = _routing(dyn, namespace, name, policy)
    routing.after_promote(record)

    def change(rec: RolloutRecord | None) -> RolloutRecord:
        rec = _ours(holder, policy.lease_seconds)(rec)
        msg = f"promoted {rec.target_storage_uri} after {len(rec.history)} looks"
        return released(rec.model_copy(update={"phase": Phase.SUCCEEDED, "traffic": 100, "message": msg}))

    obj, written = record_io.write_record(dyn, namespace, name, change, routing.promote_spec())
    record_io.record_event(dyn, obj, "promote", written.message if written else "promoted")
    return written


@task(name="rollback", **_IO)
def rollback(
    namespace: str, name: str, reason: str = "", holder: str | None = None, dry_run: bool = False
) -> dict[str, Any]:
    """Restore the previous revision to 100 % and release the lease. Idempotent.

    Serverless: ``canaryTrafficPercent: 0`` and the previous ``storageUri`` in one write (see
    :class:`tasks.rollout.routing.ServerlessRouting` for what KServe does with it). RawDeployment: the
    HTTPRoute back to 100/0 and the canary InferenceService deleted.

    Args:
        reason: why (goes to the record's message and the Event).
        holder: when given, roll back only while this holder owns the rollout (failure hooks use it so a
            refused second rollout never rolls back the first); None: unconditionally (CLI, guard).
        dry_run: change nothing; ``changed`` says whether a real run would, ``would`` what it would write.

    Returns:
        ``{"inferenceservice", "changed": bool, "phase", "message"}`` (+ ``"dry_run", "would"`` with dry_run).
    """
    dyn = _dyn()
    isvc, record = record_io.read_record(dyn, namespace, name)
    ref = f"{namespace}/{name}"
    if record is None:
        return {"inferenceservice": ref, "changed": False, "phase": None, "message": "no rollout on record"}
    if holder is not None and record.lease_holder != holder:
        return {"inferenceservice": ref, "changed": False, "phase": record.phase.value, "message": "not our rollout"}
    if record.phase is Phase.SUCCEEDED:
        return {"inferenceservice": ref, "changed": False, "phase": record.phase.value,
                "message": "promoted rollout: roll forward with a new rollout instead"}
    routing = routing_for(dyn, isvc, None, ("kserve-ingress-gateway", "kserve"), "-")
    already = record.phase is Phase.ROLLED_BACK and routing.spec_rolled_back(isvc, record)
    if dry_run:
        would = routing.describe_rollback(record)
        return {"inferenceservice": ref, "changed": not already, "phase": record.phase.value, "dry_run": True,
                "would": "nothing (already rolled back)" if already else would}
    routing.after_rollback(record)
    spec_change = routing.rollback_spec(record.previous_storage_uri)
    message = reason or record.message or "rolled back"

    def change(rec: RolloutRecord | None) -> RolloutRecord | None:
        if rec is None:
            return None
        if rec.phase is Phase.ROLLED_BACK and not rec.lease_holder:
            return None
        return released(rec.model_copy(update={"phase": Phase.ROLLED_BACK, "traffic": 0, "message": message}))

    obj, _ = record_io.write_record(dyn, namespace, name, change, None if already else spec_change)
    changed = not already
    if changed:
        record_io.record_event(dyn, obj, "rollback", message, warning=True)
    return {"inferenceservice": ref, "changed": changed, "phase": Phase.ROLLED_BACK.value, "message": message}


@task(name="find-dead-rollouts", **_IO)
def find_dead_rollouts(namespace: str | None = None) -> list[dict[str, str]]:
    """InferenceServices whose rollout is running but whose lease expired (the flow died)."""
    dyn = _dyn()
    t = now()
    out = []
    for isvc in list_isvcs(dyn, namespace):
        record = RolloutRecord.from_annotations(isvc["metadata"].get("annotations"))
        if record is not None and record.lease_expired(t):
            out.append({"namespace": isvc["metadata"]["namespace"], "name": isvc["metadata"]["name"],
                        "phase": record.phase.value, "holder": record.lease_holder,
                        "expired": record.lease_expires})
    return out


@task(name="write-report")
def report(namespace: str, name: str, out_dir: str) -> dict[str, str]:
    """Write the report of the rollout on record; return paths by role."""
    _, record = record_io.read_record(_dyn(), namespace, name)
    assert record is not None
    return {k: str(v) for k, v in write_report(record, namespace, name, Path(out_dir)).items()}


@task(name="live-holder", **_IO)
def live_holder(namespace: str, name: str) -> str | None:
    """The holder of a running rollout's unexpired lease on the InferenceService, else None."""
    record = record_io.read_record(_dyn(), namespace, name)[1]
    if record is None or record.phase.terminal or not record.lease_valid(now()):
        return None
    return record.lease_holder or None


@task(name="read-record", **_IO)
def read_record(namespace: str, name: str) -> RolloutRecord | None:
    """The rollout record on the InferenceService."""
    return record_io.read_record(_dyn(), namespace, name)[1]


@task(name="serving", **_IO)
def serving(namespace: str, name: str) -> dict[str, int]:
    """Traffic percent per revision (Serverless status) or per backend (RawDeployment route)."""
    dyn = _dyn()
    isvc = get_isvc(dyn, namespace, name)
    return routing_for(dyn, isvc, None, ("kserve-ingress-gateway", "kserve"), "-").serving(isvc)


@task(name="dry-run-look", **_IO)
def dry_run_look(namespace: str, name: str, policy: CanaryPolicy, prometheus_url: str) -> dict[str, Any]:
    """Analyse the live traffic split of the last interval without changing anything."""
    dyn = _dyn()
    isvc, routing = _routing(dyn, namespace, name, policy)
    canary_rev, baseline_rev = routing.revisions(isvc)
    ctx = QueryContext(namespace=namespace, isvc=name, canary_revision=canary_rev, baseline_revision=baseline_rev)
    t = time.time()
    provider = PrometheusProvider(prometheus_url)
    try:
        samples = collect_samples(provider, policy, ctx, now=t, canary_start=t - policy.interval_seconds,
                                  last_look=t - policy.interval_seconds)
    finally:
        provider.close()
    analysis = analyse_step(policy.analysis_policy(), None, samples, final_step=False)
    return {"canary_revision": canary_rev, "baseline_revision": baseline_rev, "decision": analysis.decision.value,
            "reason": analysis.reason, "verdicts": [v.model_dump(mode="json") for v in analysis.verdicts]}
