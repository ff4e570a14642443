"""``reconcile`` flow: start the releases a lost registry webhook missed.

For every model in ``configs/releases``: the version the registry wants (trigger alias or latest) vs the
version the InferenceService serves; when they differ, no release of it is running and it has no release
outcome yet, post the same ``kaiops.registry.release-requested`` event the receiver posts (source
``reconcile``), so the ``release/registry`` deployment trigger starts it. Scheduled every 10 minutes.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, task
from prefect.artifacts import create_table_artifact

from configs.release import load_releases
from tasks import prefect_admin
from tasks.registry.prefect_events import post_release_event
from tasks.registry.reconcile import ModelState, ReconcileAction, decide, read_deployed_version, wanted_version
from tasks.registry.requests import ReleaseRequest


@task(name="release-runs-active")
def _running(model: str, version: int) -> bool:
    return bool(prefect_admin.active_release_runs("release", model, version))


@task(name="post-release-event")
def _request_release(model: str, version: int, alias: str | None) -> str:
    return post_release_event(ReleaseRequest(model=model, version=version, alias=alias, source="reconcile"))


@flow(name="reconcile", log_prints=True)
def reconcile(releases_dir: str | None = None, kubeconfig: str | None = None,
              dry_run: bool = False) -> list[dict[str, Any]]:
    """Compare registry and cluster for every configured model; request the missing releases.

    Args:
        releases_dir: directory of release configs (default ``configs/releases``).
        kubeconfig: cluster to read the InferenceServices from (default ``$KUBECONFIG``/in-cluster).
        dry_run: report only; post nothing.

    Returns:
        One row per model: ``model``, ``wanted``, ``deployed``, ``action`` and ``event_id`` when requested.
    """
    configs = load_releases(releases_dir) if releases_dir else load_releases()
    rows: list[dict[str, Any]] = []
    for cfg in configs.values():
        wanted, outcome = wanted_version(cfg)
        deployed = read_deployed_version(cfg, kubeconfig)
        running = wanted is not None and deployed != wanted and _running(cfg.registered_model, wanted)
        state = ModelState(model=cfg.registered_model, wanted=wanted, deployed=deployed, outcome_tag=outcome,
                           running=running)
        action = decide(state)
        row: dict[str, Any] = {**state.model_dump(), "action": action.value}
        if action is ReconcileAction.START_RELEASE and not dry_run:
            alias = cfg.trigger_alias if cfg.trigger.value == "alias_set" else None
            row["event_id"] = _request_release(cfg.registered_model, wanted, alias)
        print(f"{cfg.registered_model}: wanted v{wanted} deployed v{deployed}: {action.value}")
        rows.append(row)
    create_table_artifact(rows, key="reconcile", description="Registry vs deployed, per model")
    return rows
