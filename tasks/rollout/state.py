"""Rollout state on the InferenceService: phases, the annotation record, the lease and the pure transitions.

All rollout state lives in ``rollout.kaiops.io/*`` annotations on the (stable) InferenceService, after
Flagger's canary status: each tick reads the record, makes one transition, writes it back, so a restarted
run resumes from the object and a dead run is rolled back from it by the guard - never from memory.

Everything here is pure (dicts in, dicts out, the clock passed in); the Kubernetes I/O is in
:mod:`tasks.rollout.record`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tasks.analysis import CanaryState, Decision, Direction, MetricKind, MetricSpec, StepAnalysis
from tasks.errors import PermanentError

PREFIX = "rollout.kaiops.io/"


class Phase(StrEnum):
    """Where a rollout is (one line each, Flagger-style)."""

    INITIALIZED = "Initialized"  # lease taken, nothing changed yet
    WAITING_READY = "WaitingReady"  # new storageUri applied with the first step's traffic; waiting for its revision
    PROGRESSING = "Progressing"  # the canary takes the current step's traffic; analysed every interval
    AWAITING_APPROVAL = "AwaitingApproval"  # paused for a human decision (promote / continue / rollback)
    PROMOTING = "Promoting"  # the canary is becoming the stable revision
    SUCCEEDED = "Succeeded"  # promoted: the new revision takes all traffic
    ROLLING_BACK = "RollingBack"  # traffic is going back to the previous revision
    ROLLED_BACK = "RolledBack"  # the previous revision takes all traffic again

    @property
    def terminal(self) -> bool:
        """True when the rollout is over (the lease is released)."""
        return self in (Phase.SUCCEEDED, Phase.ROLLED_BACK)


class Action(StrEnum):
    """What the flow does to the cluster after a transition."""

    NONE = "none"  # keep the traffic as it is
    SET_TRAFFIC = "set_traffic"  # move the canary to record.traffic percent
    ASK_HUMAN = "ask_human"  # pause for a RolloutDecision
    PROMOTE = "promote"  # make the canary the stable revision
    ROLLBACK = "rollback"  # restore the previous revision to 100 %


class HumanChoice(StrEnum):
    """What a person may answer when the rollout pauses."""

    PROMOTE = "promote"  # promote now, skipping the remaining steps
    CONTINUE = "continue"  # go on to the next step (promote after the last)
    ROLLBACK = "rollback"  # roll back now


class LeaseHeld(PermanentError):
    """Another rollout holds a valid lease on this InferenceService."""


class LookRecord(BaseModel):
    """One analysed look, kept for the report (plots) and the events."""

    model_config = ConfigDict(extra="forbid")

    look: int
    step: int = Field(description="0-based step index.")
    traffic: int = Field(description="Canary traffic percent during the look.")
    at: str = Field(description="ISO time of the look.")
    decision: Decision
    reason: str
    score: float | None = None
    metrics: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="metric -> {kind, canary, baseline, verdict, outcome, canary_low/high, baseline_low/high "
        "(ratio: anytime-valid CIs), bound (worst accepted canary value at this look), requests} (fractions or "
        "seconds).",
    )


def bound_at(spec: MetricSpec, baseline: float | None, baseline_worst: float | None) -> float | None:
    """The worst canary value ``spec`` accepts at one look: the tighter of its absolute bound and its bound
    relative to the baseline (taken at ``baseline_worst``, the baseline's CI end most favourable to the canary,
    when there is one, as :func:`tasks.analysis.thresholds.threshold_breaches` compares it). None: no bound."""
    lower = spec.direction is Direction.LOWER_IS_BETTER
    bounds = [spec.absolute_bound] if spec.absolute_bound is not None else []
    reference = baseline_worst if baseline_worst is not None else baseline
    if spec.baseline_bound is not None and reference is not None:
        bounds.append(spec.baseline_bound.worst_allowed(reference, spec.direction))
    if not bounds:
        return None
    return min(bounds) if lower else max(bounds)


def look_record(analysis: StepAnalysis, specs: list[MetricSpec], *, step: int, traffic: int, at: str) -> LookRecord:
    """The :class:`LookRecord` of one analysed look: per metric the estimates, their anytime-valid bands
    (ratio metrics), the bound in force and the verdict - what the report figure draws (pure)."""
    by_name = {s.name: s for s in specs}
    metrics: dict[str, dict[str, Any]] = {}
    for v in analysis.verdicts:
        spec = by_name.get(v.metric)
        lower = spec is None or spec.direction is Direction.LOWER_IS_BETTER
        worst = v.baseline_high if lower else v.baseline_low
        row: dict[str, Any] = {"kind": v.kind.value, "canary": v.canary, "baseline": v.baseline,
                               "verdict": v.verdict.value, "outcome": v.outcome.value,
                               "requests": v.canary_requests, "e_value": v.e_value, "e_threshold": v.e_threshold}
        if v.kind is MetricKind.RATIO:
            row.update(canary_low=v.canary_low, canary_high=v.canary_high, baseline_low=v.baseline_low,
                       baseline_high=v.baseline_high)
        if spec is not None:
            row["bound"] = bound_at(spec, v.baseline, worst if v.kind is MetricKind.RATIO else None)
        metrics[v.metric] = row
    return LookRecord(look=analysis.look, step=step, traffic=traffic, at=at, decision=analysis.decision,
                      reason=analysis.reason, score=analysis.score, metrics=metrics)


class RolloutRecord(BaseModel):
    """Everything a rollout knows, as stored in the annotations (one key per field)."""

    model_config = ConfigDict(extra="forbid")

    phase: Phase = Phase.INITIALIZED
    mode: str = "Serverless"
    step: int = 0
    traffic: int = 0
    target_storage_uri: str = ""
    previous_storage_uri: str = ""
    previous_revision: str = ""
    canary_revision: str = ""
    started: str = ""  # ISO time the rollout began (ready deadline counts from here)
    canary_started: str = ""  # ISO time the canary first took traffic (counts since then)
    last_look: str = ""  # ISO time of the last analysed look (or canary start)
    analysis: CanaryState | None = None
    history: list[LookRecord] = Field(default_factory=list)
    message: str = ""
    lease_holder: str = ""
    lease_expires: str = ""

    # -- annotations ------------------------------------------------------------------------------------

    def to_annotations(self) -> dict[str, str]:
        """Return the ``rollout.kaiops.io/*`` annotations for this record (all values strings)."""
        out: dict[str, str] = {}
        for name, value in self:
            key = PREFIX + name.replace("_", "-")
            if name == "analysis":
                out[key] = value.model_dump_json() if value is not None else ""
            elif name == "history":
                out[key] = json.dumps([h.model_dump(mode="json") for h in value], separators=(",", ":"))
            else:
                out[key] = str(value.value if isinstance(value, StrEnum) else value)
        return out

    @classmethod
    def from_annotations(cls, annotations: dict[str, str] | None) -> RolloutRecord | None:
        """Read the record from an object's annotations; None when no rollout ever ran on it."""
        annotations = annotations or {}
        if PREFIX + "phase" not in annotations:
            return None
        raw: dict[str, Any] = {}
        for name in cls.model_fields:
            value = annotations.get(PREFIX + name.replace("_", "-"))
            if value is None or value == "":
                continue
            if name == "analysis":
                raw[name] = CanaryState.model_validate_json(value)
            elif name == "history":
                raw[name] = json.loads(value)
            elif name in ("step", "traffic"):
                raw[name] = int(value)
            else:
                raw[name] = value
        return cls.model_validate(raw)

    # -- lease -------------------------------------------------------------------------------------------

    def lease_valid(self, now: datetime) -> bool:
        """True when a holder is named and its lease has not expired at ``now``."""
        return bool(self.lease_holder) and bool(self.lease_expires) and parse_time(self.lease_expires) > now

    def lease_expired(self, now: datetime) -> bool:
        """True for a running (non-terminal) rollout whose lease ran out: its flow died."""
        return not self.phase.terminal and not self.lease_valid(now)


def iso(t: datetime) -> str:
    """ISO-8601 UTC with seconds precision and ``Z`` (as Kubernetes writes times)."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """Parse a time written by :func:`iso` (or any ISO-8601 with zone)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def acquire(record: RolloutRecord | None, holder: str, now: datetime, ttl: float) -> RolloutRecord:
    """Take the lease for ``holder``, or renew it when ``holder`` already has it.

    A record in a terminal phase, or with an expired lease *and* no running rollout, starts afresh.
    A running rollout with an expired lease is *not* taken over here (the guard rolls it back first),
    except by a holder resuming its own run.

    Raises:
        LeaseHeld: another holder's lease is valid, or a dead rollout waits for the guard.
    """
    from datetime import timedelta

    expires = iso(now + timedelta(seconds=ttl))
    if record is None or record.phase.terminal:
        return RolloutRecord(phase=Phase.INITIALIZED, lease_holder=holder, lease_expires=expires, started=iso(now))
    if record.lease_holder == holder:
        return record.model_copy(update={"lease_expires": expires})
    if record.lease_valid(now):
        raise LeaseHeld(
            f"rollout {record.lease_holder!r} holds the lease until {record.lease_expires} "
            f"(phase {record.phase.value}, step {record.step}); wait for it or run `kaiops rollback`"
        )
    raise LeaseHeld(
        f"a rollout by {record.lease_holder!r} died in phase {record.phase.value} (lease expired "
        f"{record.lease_expires}); `kaiops guard` or `kaiops rollback` restores the previous revision first"
    )


def renew(record: RolloutRecord, holder: str, now: datetime, ttl: float) -> RolloutRecord:
    """Extend the lease of ``holder``.

    Raises:
        LeaseHeld: the lease is no longer ours (the guard rolled back or someone took over).
    """
    from datetime import timedelta

    if record.lease_holder != holder:
        raise LeaseHeld(f"lease lost to {record.lease_holder!r} (phase {record.phase.value})")
    return record.model_copy(update={"lease_expires": iso(now + timedelta(seconds=ttl))})


def released(record: RolloutRecord) -> RolloutRecord:
    """The record with no lease holder (terminal phases)."""
    return record.model_copy(update={"lease_holder": "", "lease_expires": ""})


def after_analysis(
    record: RolloutRecord, decision: Decision, steps: list[int], approval_steps: list[int], max_looks: int
) -> tuple[RolloutRecord, Action]:
    """The one transition after a look's decision (pure).

    Args:
        record: the record in phase Progressing, with ``analysis`` and ``history`` already updated.
        decision: the look's decision.
        steps: traffic percents of the policy; approval_steps: percents whose pass asks a human.
        max_looks: looks after which an undecided canary is rolled back.

    Returns:
        the new record and the action the flow must take.
    """
    looks = len(record.history)
    if decision is Decision.ROLLBACK:
        return record.model_copy(update={"phase": Phase.ROLLING_BACK}), Action.ROLLBACK
    if decision is Decision.PAUSE_FOR_HUMAN:
        return record.model_copy(update={"phase": Phase.AWAITING_APPROVAL}), Action.ASK_HUMAN
    if decision in (Decision.ADVANCE, Decision.PROMOTE):
        if steps[record.step] in approval_steps:
            return record.model_copy(update={"phase": Phase.AWAITING_APPROVAL}), Action.ASK_HUMAN
        return next_step(record, steps)
    # HOLD
    if looks >= max_looks:
        msg = f"{looks} looks without a decision (max_looks {max_looks})"
        return record.model_copy(update={"phase": Phase.ROLLING_BACK, "message": msg}), Action.ROLLBACK
    return record, Action.NONE


def next_step(record: RolloutRecord, steps: list[int]) -> tuple[RolloutRecord, Action]:
    """Advance to the next step, or promote after the last (pure)."""
    if record.step >= len(steps) - 1:
        return record.model_copy(update={"phase": Phase.PROMOTING}), Action.PROMOTE
    nxt = record.step + 1
    return (
        record.model_copy(update={"phase": Phase.PROGRESSING, "step": nxt, "traffic": steps[nxt]}),
        Action.SET_TRAFFIC,
    )


def after_human(record: RolloutRecord, choice: HumanChoice | None, steps: list[int]) -> tuple[RolloutRecord, Action]:
    """The transition after a human decision; ``None`` (the pause timed out) rolls back (pure)."""
    if choice is None:
        msg = "no human decision before the approval timeout"
        return record.model_copy(update={"phase": Phase.ROLLING_BACK, "message": msg}), Action.ROLLBACK
    if choice is HumanChoice.ROLLBACK:
        msg = "rolled back by a human decision"
        return record.model_copy(update={"phase": Phase.ROLLING_BACK, "message": msg}), Action.ROLLBACK
    if choice is HumanChoice.PROMOTE:
        return record.model_copy(update={"phase": Phase.PROMOTING}), Action.PROMOTE
    return next_step(record, steps)


def record_annotation_keys() -> list[str]:
    """Every annotation key a :class:`RolloutRecord` is written to (``rollout.kaiops.io/<field>``), sorted."""
    return sorted(PREFIX + name.replace("_", "-") for name in RolloutRecord.model_fields)
