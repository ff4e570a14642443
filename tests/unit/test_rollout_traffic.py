"""The rollout's Serverless writes, fed through the sandbox KServe status rules, give the canary its share.

Regression guard for the first live run, where the load generator saw no request on the canary: the
rollout's manifest building (:func:`tasks.kube.applyable_body` + :class:`ServerlessRouting` spec changes +
the record annotations) and the emulator's status and router weights are checked together, step by step,
without processes. (That run's cause was outside both: its load stopped before the canary became ready.)
"""

from __future__ import annotations

import copy

import pytest

from sandbox.kserve.revisions import (
    DeploymentMode,
    Revision,
    RevisionPhase,
    compute_status,
    predictor_hash,
    traffic_weights,
)
from tasks import kube
from tasks.rollout.isvc import ISVC_API, ISVC_KIND
from tasks.rollout.readiness import revision_verdict
from tasks.rollout.routing import ServerlessRouting
from tasks.rollout.state import Phase, RolloutRecord

pytestmark = pytest.mark.unit

R, L = RevisionPhase.READY, RevisionPhase.LOADING
V1, V2 = "s3://models/iris/v1/", "s3://models/iris/v2/"


def _isvc() -> dict:
    return {"apiVersion": ISVC_API, "kind": ISVC_KIND,
            "metadata": {"name": "iris", "namespace": "demo", "resourceVersion": "7", "generation": 1,
                         "annotations": {"team": "ml"}, "labels": {"app": "iris"}},
            "spec": {"predictor": {"serviceAccountName": "models",
                                   "model": {"modelFormat": {"name": "sklearn"}, "storageUri": V1}}}}


def _write(obj: dict, record: RolloutRecord, spec_change=None) -> dict:
    """What :func:`tasks.rollout.record.write_record` sends, applied to ``obj`` as the apiserver would store it."""
    body = kube.applyable_body(obj)
    annotations = {k: v for k, v in body["metadata"].get("annotations", {}).items()
                   if not k.startswith("rollout.kaiops.io/")}
    annotations.update(record.to_annotations())
    body["metadata"]["annotations"] = annotations
    if spec_change is not None:
        spec_change(body["spec"])
    out = copy.deepcopy(obj)
    out["metadata"]["annotations"] = annotations
    out["spec"] = body["spec"]
    return out


def _reconcile(obj: dict, revisions: list[Revision]) -> dict:
    status = obj.get("status") or {}
    for _ in range(3):
        status = compute_status(obj, revisions, status, "http://127.0.0.1:1", "t")
    return {**obj, "status": status}


def _revs(*phases: RevisionPhase) -> list[Revision]:
    return [Revision(f"iris-predictor-{i + 1:05d}", p) for i, p in enumerate(phases)]


def test_serverless_rollout_writes_split_traffic_to_the_canary() -> None:
    routing = ServerlessRouting(None, "demo", "iris")  # type: ignore[arg-type]
    obj = _reconcile(_isvc(), _revs(R))
    assert traffic_weights(obj["status"], _revs(R), DeploymentMode.SERVERLESS) == {"iris-predictor-00001": 100}
    stable = routing.stable_revision(obj)
    assert stable == "iris-predictor-00001"

    record = RolloutRecord(phase=Phase.WAITING_READY, traffic=20, previous_revision=stable, lease_holder="a")
    obj = _write(obj, record, routing.start_spec(V2, 20))
    assert obj["spec"]["predictor"]["canaryTrafficPercent"] == 20
    assert obj["spec"]["predictor"]["model"]["storageUri"] == V2
    assert obj["spec"]["predictor"]["serviceAccountName"] == "models"  # the whole spec is kept
    assert obj["metadata"]["annotations"]["team"] == "ml"

    # while the new revision loads, everything stays on the old one and the rollout keeps waiting
    loading = _revs(R, L)
    obj = _reconcile(obj, loading)
    assert traffic_weights(obj["status"], loading, DeploymentMode.SERVERLESS) == {"iris-predictor-00001": 100}
    assert revision_verdict(obj, stable, 20) is None

    ready = _revs(R, R)
    obj = _reconcile(obj, ready)
    assert revision_verdict(obj, stable, 20) == "ready"
    assert routing.revisions(obj) == ("iris-predictor-00002", "iris-predictor-00001")
    assert traffic_weights(obj["status"], ready, DeploymentMode.SERVERLESS) == {
        "iris-predictor-00002": 20, "iris-predictor-00001": 80}

    # a lease renewal (annotations only) neither makes a revision nor moves traffic
    renewed = _write(obj, record.model_copy(update={"lease_expires": "2030-01-01T00:00:00.000000Z"}))
    assert predictor_hash(renewed) == predictor_hash(obj)
    assert traffic_weights(_reconcile(renewed, ready)["status"], ready, DeploymentMode.SERVERLESS)[
        "iris-predictor-00002"] == 20

    obj = _reconcile(_write(obj, record, routing.traffic_spec(50)), ready)
    assert traffic_weights(obj["status"], ready, DeploymentMode.SERVERLESS) == {
        "iris-predictor-00002": 50, "iris-predictor-00001": 50}

    promoted = _reconcile(_write(obj, record, routing.promote_spec()), ready)
    assert "canaryTrafficPercent" not in promoted["spec"]["predictor"]
    assert traffic_weights(promoted["status"], ready, DeploymentMode.SERVERLESS) == {"iris-predictor-00002": 100}
    assert promoted["status"]["components"]["predictor"]["latestRolledoutRevision"] == "iris-predictor-00002"


def test_serverless_rollback_sends_everything_back_at_once() -> None:
    routing = ServerlessRouting(None, "demo", "iris")  # type: ignore[arg-type]
    record = RolloutRecord(phase=Phase.PROGRESSING, traffic=20, previous_revision="iris-predictor-00001")
    obj = _reconcile(_isvc(), _revs(R))
    obj = _reconcile(_write(obj, record, routing.start_spec(V2, 20)), _revs(R, R))
    rolled = _write(obj, record, routing.rollback_spec(V1))
    assert rolled["spec"]["predictor"]["canaryTrafficPercent"] == 0
    assert rolled["spec"]["predictor"]["model"]["storageUri"] == V1
    # the restored spec makes one more revision; it and the canary get 0 %, whether or not it is ready yet
    for revisions in (_revs(R, R, L), _revs(R, R, R)):
        weights = traffic_weights(_reconcile(rolled, revisions)["status"], revisions, DeploymentMode.SERVERLESS)
        assert {k: v for k, v in weights.items() if v} == {"iris-predictor-00001": 100}


def test_extrapolated_counts_that_shrink_do_not_make_a_look_inconclusive() -> None:
    """At the 100 % step the baseline stops growing and increase()'s extrapolated estimate shrinks a little;
    the live run read that as "a counter went backwards" at every look of the last step and rolled back."""
    from configs.canary import load_policy
    from tasks.analysis import MetricSample, Outcome, analyse_step
    from tasks.metrics import monotone_counts

    policy = load_policy("configs/canary/default.yaml").model_copy(update={"min_requests_per_step": 20})
    policy = policy.model_copy(update={"metrics": [m for m in policy.metrics if m.name == "error_rate"]})
    first = MetricSample(metric="error_rate", outcome=Outcome.OK, canary_total=100.0, canary_events=0.0,
                         baseline_total=412.6, baseline_events=0.0)
    look1 = analyse_step(policy.analysis_policy(), None, [first], final_step=False)
    assert look1.decision.value == "advance"
    shrunk = MetricSample(metric="error_rate", outcome=Outcome.OK, canary_total=300.0, canary_events=0.0,
                          baseline_total=405.2, baseline_events=0.0)
    raw = analyse_step(policy.analysis_policy(), look1.state, [shrunk], final_step=True)
    assert raw.decision.value == "hold" and "backwards" in raw.reason  # what the live run saw
    fixed = monotone_counts([shrunk], look1.state, policy)
    assert fixed[0].baseline_total == 413.0 and fixed[0].canary_total == 300.0
    assert analyse_step(policy.analysis_policy(), look1.state, fixed, final_step=True).decision.value == "promote"


def test_a_new_rollout_does_not_inherit_the_previous_analysis() -> None:
    """The apiserver keeps annotation keys a server-side apply leaves out (no field ownership for this CRD's
    annotations here), so the second live rollout started from the first one's looks and counts."""
    from datetime import UTC, datetime

    from tasks.analysis import CanaryState
    from tasks.rollout.state import acquire

    done = RolloutRecord(phase=Phase.ROLLED_BACK, analysis=CanaryState(looks=3), message="old")
    obj = _write(_isvc(), done)
    fresh = acquire(RolloutRecord.from_annotations(obj["metadata"]["annotations"]), "b", datetime.now(UTC), 30)
    after = _write(obj, fresh)["metadata"]["annotations"]
    assert after["rollout.kaiops.io/analysis"] == "" and after["rollout.kaiops.io/message"] == ""
    again = RolloutRecord.from_annotations(after)
    assert again is not None and again.analysis is None and again.phase is Phase.INITIALIZED and not again.message
