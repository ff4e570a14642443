"""What a wait that gives up reports: the waited-on object's conditions with reason and message (pure)."""

from __future__ import annotations

import pytest

from tasks.kube import describe_conditions, not_true_conditions

pytestmark = pytest.mark.unit

ISVC = {"status": {"conditions": [
    {"type": "PredictorReady", "status": "True"},
    {"type": "Ready", "status": "False", "reason": "RevisionMissing",
     "message": 'Revision "iris-predictor-00002" failed with message: storage initializer: no model found'},
]}}
PENDING_POD = {"status": {"phase": "Pending", "conditions": [
    {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
     "message": "0/1 nodes are available: 1 Insufficient cpu."}]}}


def test_conditions_carry_reason_and_message():
    text = describe_conditions(ISVC)
    assert "Ready=False (RevisionMissing: Revision \"iris-predictor-00002\" failed" in text
    assert "PredictorReady=True" in text


def test_a_pending_pod_says_why_the_scheduler_left_it():
    assert describe_conditions(PENDING_POD) == ("phase=Pending; PodScheduled=False (Unschedulable: 0/1 nodes are "
                                                "available: 1 Insufficient cpu.)")


def test_still_missing_lists_only_what_is_not_true():
    assert not_true_conditions(ISVC).startswith("Ready=False (RevisionMissing")
    assert "PredictorReady" not in not_true_conditions(ISVC)
    assert not_true_conditions(None) == "no status yet"
    assert not_true_conditions({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}) == \
        "every condition True"
