"""Reconcile the registry with what is deployed: which releases a lost webhook missed.

MLflow delivers webhooks once (retries only on 429/5xx), so a receiver that was down loses the event.
For each configured model, the *wanted* version is the one the trigger points at (the ``trigger_alias``
for ``alias_set``, the latest version for ``version_created``); the *deployed* version is read from the
InferenceService's ``predictor.model.storageUri`` (``<destination_prefix>/v<N>``). :func:`decide` (pure)
says what to do; the tasks around it do the I/O.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from prefect import task
from pydantic import BaseModel, ConfigDict

from configs.release import ReleaseConfig, ReleaseTrigger
from tasks.errors import io_retries
from tasks.registry import mlflow_ops
from tasks.registry.mlflow_ops import TAG_OUTCOME


class ReconcileAction(StrEnum):
    """What reconcile does for one model."""

    IN_SYNC = "in-sync"  # the wanted version is what the InferenceService serves
    START_RELEASE = "start-release"  # the wanted version was never released: ask for it
    ALREADY_TRIED = "already-tried"  # the wanted version carries a release outcome (e.g. failed): leave it
    RUNNING = "running"  # a release of the wanted version is scheduled or running
    NO_TARGET = "no-target"  # the trigger alias is not set / the model has no versions


class ModelState(BaseModel):
    """What reconcile saw for one model."""

    model_config = ConfigDict(frozen=True)

    model: str
    wanted: int | None
    deployed: int | None
    outcome_tag: str | None
    running: bool


def deployed_version(cfg: ReleaseConfig, isvc: dict[str, Any] | None) -> int | None:
    """The version number in the InferenceService's storageUri when it lies under the model's prefix."""
    if not isvc:
        return None
    uri = (((isvc.get("spec") or {}).get("predictor") or {}).get("model") or {}).get("storageUri") or ""
    m = re.fullmatch(re.escape(cfg.destination_prefix.rstrip("/")) + r"/v(\d+)/?", uri)
    return int(m.group(1)) if m else None


def decide(state: ModelState) -> ReconcileAction:
    """The action for one model (order matters: nothing wanted, in sync, running, tried, else release)."""
    if state.wanted is None:
        return ReconcileAction.NO_TARGET
    if state.deployed == state.wanted:
        return ReconcileAction.IN_SYNC
    if state.running:
        return ReconcileAction.RUNNING
    if state.outcome_tag:
        return ReconcileAction.ALREADY_TRIED
    return ReconcileAction.START_RELEASE


@task(name="registry-wanted-version", **io_retries(2, 3))
def wanted_version(cfg: ReleaseConfig) -> tuple[int | None, str | None]:
    """(the version the trigger points at, its release-outcome tag) from the registry."""
    if cfg.trigger is ReleaseTrigger.ALIAS_SET:
        version = mlflow_ops.aliases(cfg.registered_model).get(cfg.trigger_alias)
    else:
        version = mlflow_ops.latest_version(cfg.registered_model)
    if version is None:
        return None, None
    return version, mlflow_ops.version_info(cfg.registered_model, version).tags.get(TAG_OUTCOME)


@task(name="deployed-version")
def read_deployed_version(cfg: ReleaseConfig, kubeconfig: str | None = None) -> int | None:
    """The version the InferenceService serves (None when it does not exist or serves something else)."""
    from tasks import kube

    dyn = kube.connect(kubeconfig)
    try:
        isvc = kube.get(dyn, "serving.kserve.io/v1beta1", "InferenceService", cfg.inference_service, cfg.namespace)
    except kube.NotFound:
        return None
    return deployed_version(cfg, isvc)
