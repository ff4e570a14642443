"""Progressive canary rollout of a KServe InferenceService, gated on Prometheus; rollback; the guard.

The flow body is the runbook: validate -> lock -> apply the new model at the first step -> wait for the
revision -> per step: wait, analyse, advance / hold / roll back / ask a human -> promote -> report. Every
transition is a task that reads the record on the InferenceService and writes the next one, so the flow
holds no state of its own: a run that dies is resumed (same flow run) or rolled back by ``guard``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import BaseModel, ConfigDict, Field

from configs.inputs import K8sName, Namespace, StorageUri
from tasks.errors import NotFound
from tasks.rollout import tasks as t
from tasks.rollout.state import Action, HumanChoice, Phase


class RolloutDecision(BaseModel):
    """The form a person fills in when a rollout pauses (Prefect UI)."""

    model_config = ConfigDict(extra="forbid")

    choice: HumanChoice = Field(description="promote now, continue to the next step, or roll back.")
    comment: str = Field("", max_length=500, description="Why (recorded in the Event).")


def _rollback_hook(flow_: Any, flow_run: Any, state: Any) -> None:
    """on_failure / on_crashed: roll back if this run still holds the rollout (never someone else's)."""
    params = flow_run.parameters or {}
    if params.get("dry_run"):
        return
    try:
        t.rollback.fn(params["namespace"], params["isvc"], reason=f"flow run {state.name}: {state.message}",
                      holder=f"flow-run/{flow_run.id}")
    except NotFound:  # the InferenceService is not there: this run changed nothing, there is nothing to restore
        return
    except Exception as exc:  # the guard will try again once the lease expires
        print(f"rollback from the {state.name} hook failed: {exc}; the guard restores traffic")


@flow(name="canary-rollout", log_prints=True, on_failure=[_rollback_hook], on_crashed=[_rollback_hook])
def canary_rollout(
    isvc: K8sName,
    namespace: Namespace,
    storage_uri: StorageUri,
    policy_file: str,
    prometheus_url: str | None = None,
    out_dir: str = "rollout-out",
    dry_run: bool = False,
) -> dict[str, Any]:
    """Roll ``storage_uri`` out on InferenceService ``namespace/isvc`` following the policy.

    Returns:
        the JSON summary (phase, looks, report paths); with ``dry_run`` the analysis of the live split.

    Raises:
        InputError: bad policy, a metric or label missing in Prometheus, or a mode mismatch (nothing changed).
        LeaseHeld: another rollout of this InferenceService is running (nothing changed).
    """
    prometheus_url = prometheus_url or os.environ["PROMETHEUS_URL"]
    policy = t.validate_policy(policy_file, prometheus_url)
    t.check_target(namespace, isvc, policy, policy_file, storage_uri)
    if dry_run:
        return t.dry_run_look(namespace, isvc, policy, prometheus_url)

    holder = t.holder_id()
    limit = t.concurrency_name(namespace, isvc)
    t.ensure_concurrency_limit(limit)
    slot = _take_slot(limit, namespace, isvc, policy.lease_seconds)
    try:
        record = t.acquire_lease(namespace, isvc, holder, policy, storage_uri)
        rows: list[dict[str, Any]] = []
        while not record.phase.terminal:
            if record.phase is Phase.INITIALIZED:
                record = t.start_canary(namespace, isvc, holder, policy)
            elif record.phase is Phase.WAITING_READY:
                record = t.wait_ready(namespace, isvc, holder, policy)
            elif record.phase is Phase.PROGRESSING:
                t.wait_interval(namespace, isvc, holder, policy, t.next_look_in(record, policy))
                record, action, analysis = t.analyse_look(namespace, isvc, holder, policy, prometheus_url)
                rows.append({"look": analysis.look, "traffic": record.history[-1].traffic,
                             "decision": analysis.decision.value, "score": analysis.score, "reason": analysis.reason})
                create_table_artifact(rows, key=f"rollout-{namespace}-{isvc}"[:60].lower(),
                                      description=f"Looks of the rollout of {namespace}/{isvc}")
                print(f"look {analysis.look}: {analysis.decision.value}: {analysis.reason}")
                if action is Action.ASK_HUMAN:
                    record = t.decide_human(namespace, isvc, holder, policy, *_ask_human(policy, record))
            elif record.phase is Phase.AWAITING_APPROVAL:
                record = t.decide_human(namespace, isvc, holder, policy, *_ask_human(policy, record))
            elif record.phase is Phase.PROMOTING:
                record = t.promote(namespace, isvc, holder, policy)
            elif record.phase is Phase.ROLLING_BACK:
                t.rollback(namespace, isvc, holder=holder)
                record = t.read_record(namespace, isvc)
    finally:
        slot.__exit__(None, None, None)
    paths = t.report(namespace, isvc, out_dir)
    _report_artifact(namespace, isvc, paths)
    summary = {"phase": record.phase.value, "message": record.message, "looks": len(record.history),
               "report": paths.get("markdown"), "summary": paths.get("json"),
               "serving": t.serving(namespace, isvc)}
    print(f"rollout of {namespace}/{isvc}: {record.phase.value}: {record.message}")
    return summary


def _take_slot(limit: str, namespace: str, isvc: str, lease_seconds: float) -> Any:
    """Enter the Prefect concurrency limit ``limit`` (1 slot) and return the entered context manager.

    The slot's Prefect lease expires like the annotation lease (Prefect's minimum is 60 s), so a run killed
    with SIGKILL holds it at most that long. When the slot is taken but the InferenceService shows no live
    lease, its holder died: wait for its Prefect lease to run out instead of refusing.

    Raises:
        LeaseHeld: a live rollout holds the InferenceService's lease, or the slot stayed taken.
    """
    from prefect.concurrency.sync import concurrency

    lease = max(60.0, lease_seconds)
    for wait_s in (5.0, lease + 15.0):
        slot = concurrency(limit, occupy=1, timeout_seconds=wait_s, strict=True, lease_duration=lease)
        try:
            slot.__enter__()
            return slot
        except TimeoutError:
            holder = t.live_holder(namespace, isvc)
            if holder:
                raise t.LeaseHeld(f"rollout {holder} of {namespace}/{isvc} is running (concurrency limit "
                                  f"{limit})") from None
            print(f"concurrency limit {limit} is taken but no live rollout holds {namespace}/{isvc}: waiting up "
                  f"to {lease + 15:.0f}s for the dead run's slot lease to expire")
    raise t.LeaseHeld(f"concurrency limit {limit} stayed taken with no live rollout on {namespace}/{isvc}")


def _ask_human(policy: Any, record: Any) -> tuple[HumanChoice | None, str]:
    """Pause the run for a RolloutDecision; (choice, comment), choice None when nobody answered in time."""
    from prefect.flow_runs import pause_flow_run

    print(f"waiting up to {policy.approval_timeout_seconds}s for a human decision: {record.message}")
    try:
        answer = pause_flow_run(wait_for_input=RolloutDecision, timeout=policy.approval_timeout_seconds)
    except Exception as exc:  # FlowPauseTimeout, or no API to pause against: fail closed
        print(f"no decision ({exc.__class__.__name__}): rolling back")
        return None, ""
    return (answer.choice, answer.comment) if answer is not None else (None, "")


def _report_artifact(namespace: str, isvc: str, paths: dict[str, str]) -> None:
    import base64

    text = Path(paths["markdown"]).read_text()
    for role, path in paths.items():
        if role.startswith("plot:"):
            data = base64.b64encode(Path(path).read_bytes()).decode()
            text = text.replace(f"({Path(path).name})", f"(data:image/png;base64,{data})")
    text += f"\n\nFiles: {', '.join(paths.values())}\n"
    create_markdown_artifact(text, key=f"rollout-report-{namespace}-{isvc}"[:60].lower(),
                             description=f"Rollout report of {namespace}/{isvc}")


@flow(name="canary-rollback", log_prints=True)
def canary_rollback(isvc: K8sName, namespace: Namespace, reason: str = "manual rollback", dry_run: bool = False
                    ) -> dict[str, Any]:
    """Restore the previous revision of ``namespace/isvc`` to 100 % (idempotent); ``dry_run`` only says what
    would be written (see :func:`tasks.rollout.tasks.rollback` for the returned dict)."""
    return t.rollback(namespace, isvc, reason=reason, dry_run=dry_run)


@flow(name="canary-guard", log_prints=True)
def canary_guard(namespace: str | None = None, dry_run: bool = False) -> list[dict[str, Any]]:
    """Roll back every rollout whose lease expired (its flow died). Meant to run every minute.

    Args:
        namespace: only this namespace (None: all).
        dry_run: list the dead rollouts and what their rollback would write; change nothing.

    Returns:
        one row per dead rollout found, with the rollback's result.
    """
    rows = []
    for dead in t.find_dead_rollouts(namespace):
        result = t.rollback(dead["namespace"], dead["name"],
                            reason=f"guard: lease of {dead['holder']} expired at {dead['expired']} "
                                   f"in phase {dead['phase']}", dry_run=dry_run)
        rows.append({**dead, **result})
        verb = "would roll back" if dry_run else "rolled back"
        print(f"guard {verb} {dead['namespace']}/{dead['name']} (phase {dead['phase']})")
    return rows
