"""The rollout record on annotations, the lease and the pure transitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tasks.analysis import CanaryState, Decision
from tasks.rollout.state import (
    Action,
    HumanChoice,
    LeaseHeld,
    LookRecord,
    Phase,
    RolloutRecord,
    acquire,
    after_analysis,
    after_human,
    renew,
)

pytestmark = pytest.mark.unit
T0 = datetime(2025, 1, 1, tzinfo=UTC)
STEPS = [10, 25, 50, 100]


def _progressing(step: int = 0) -> RolloutRecord:
    return RolloutRecord(phase=Phase.PROGRESSING, step=step, traffic=STEPS[step], lease_holder="a",
                         lease_expires="2025-01-01T00:01:00.000000Z")


def test_record_round_trips_through_annotations() -> None:
    rec = _progressing(2).model_copy(update={
        "analysis": CanaryState(looks=3),
        "history": [LookRecord(look=1, step=0, traffic=10, at="t", decision=Decision.ADVANCE, reason="ok",
                               metrics={"error_rate": {"canary": 0.01, "baseline": 0.02, "verdict": "pass"}})],
    })
    annotations = rec.to_annotations()
    assert all(k.startswith("rollout.kaiops.io/") and isinstance(v, str) for k, v in annotations.items())
    assert RolloutRecord.from_annotations({**annotations, "other": "x"}) == rec
    assert RolloutRecord.from_annotations({"other": "x"}) is None


def test_second_holder_is_refused_while_the_lease_is_valid() -> None:
    rec = acquire(None, "a", T0, 60)
    rec = rec.model_copy(update={"phase": Phase.PROGRESSING})
    with pytest.raises(LeaseHeld, match="holds the lease"):
        acquire(rec, "b", T0 + timedelta(seconds=30), 60)
    assert acquire(rec, "a", T0 + timedelta(seconds=30), 60).lease_holder == "a"  # resuming our own run


def test_dead_rollout_is_left_to_the_guard_and_terminal_ones_restart() -> None:
    rec = acquire(None, "a", T0, 60).model_copy(update={"phase": Phase.PROGRESSING})
    later = T0 + timedelta(seconds=61)
    assert rec.lease_expired(later)
    with pytest.raises(LeaseHeld, match="guard"):
        acquire(rec, "b", later, 60)
    done = rec.model_copy(update={"phase": Phase.ROLLED_BACK})
    assert not done.lease_expired(later)
    assert acquire(done, "b", later, 60).phase is Phase.INITIALIZED


def test_renew_refuses_a_lost_lease() -> None:
    rec = acquire(None, "a", T0, 60)
    with pytest.raises(LeaseHeld):
        renew(rec.model_copy(update={"lease_holder": ""}), "a", T0, 60)


def test_advance_moves_traffic_and_last_step_promotes() -> None:
    rec, action = after_analysis(_progressing(0), Decision.ADVANCE, STEPS, [], 100)
    assert (rec.step, rec.traffic, action) == (1, 25, Action.SET_TRAFFIC)
    rec, action = after_analysis(_progressing(3), Decision.PROMOTE, STEPS, [], 100)
    assert (rec.phase, action) == (Phase.PROMOTING, Action.PROMOTE)


def test_hold_keeps_traffic_until_max_looks() -> None:
    rec, action = after_analysis(_progressing(1), Decision.HOLD, STEPS, [], 100)
    assert (rec.traffic, action) == (25, Action.NONE)
    many = _progressing(1).model_copy(update={"history": [
        LookRecord(look=i, step=1, traffic=25, at="t", decision=Decision.HOLD, reason="") for i in range(5)]})
    rec, action = after_analysis(many, Decision.HOLD, STEPS, [], 5)
    assert (rec.phase, action) == (Phase.ROLLING_BACK, Action.ROLLBACK)


def test_rollback_and_approval_steps() -> None:
    rec, action = after_analysis(_progressing(1), Decision.ROLLBACK, STEPS, [], 100)
    assert (rec.phase, action) == (Phase.ROLLING_BACK, Action.ROLLBACK)
    rec, action = after_analysis(_progressing(1), Decision.ADVANCE, STEPS, [25], 100)
    assert (rec.phase, action) == (Phase.AWAITING_APPROVAL, Action.ASK_HUMAN)
    rec, action = after_analysis(_progressing(1), Decision.PAUSE_FOR_HUMAN, STEPS, [], 100)
    assert action is Action.ASK_HUMAN


@pytest.mark.parametrize(
    ("choice", "phase", "action"),
    [
        (None, Phase.ROLLING_BACK, Action.ROLLBACK),  # the pause timed out
        (HumanChoice.ROLLBACK, Phase.ROLLING_BACK, Action.ROLLBACK),
        (HumanChoice.PROMOTE, Phase.PROMOTING, Action.PROMOTE),
        (HumanChoice.CONTINUE, Phase.PROGRESSING, Action.SET_TRAFFIC),
    ],
)
def test_human_choices(choice: HumanChoice | None, phase: Phase, action: Action) -> None:
    rec, got = after_human(_progressing(1).model_copy(update={"phase": Phase.AWAITING_APPROVAL}), choice, STEPS)
    assert (rec.phase, got) == (phase, action)
