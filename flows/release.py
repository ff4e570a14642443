"""``release`` flow: one registered model version from the registry to 100% of traffic, or back.

The runbook: read the version from the registry -> download its artifacts -> publish them to the
model's destination prefix (``<prefix>/v<version>``; a no-op when already published) -> warm up the
storage initializer -> canary rollout judged by the model's canary policy -> on success set the
``champion`` alias and tag the version ``kaiops.release.outcome=succeeded``; on failure tag it with the
failed step and reason (and the flow run fails).

Started three ways: from the registry (the deployment trigger on ``kaiops.registry.release-requested``),
by the ``reconcile`` flow, or from the Prefect UI / ``prefect deployment run`` (the parameters are
pydantic models, so the UI renders a form). One release per model runs at a time: the flow holds the
global concurrency limit ``kaiops-release-<model>`` (created by ``kaiops deploy``).

Steps call the other flows as subflows through one small wrapper each: :func:`_publish`
(``flows.publish.publish_model``), :func:`_warmup` (``flows.warmup.warmup_model``: the InferenceService's
storage initializer and credentials) and :func:`_rollout` (``flows.rollout.canary_rollout``).
"""

from __future__ import annotations

import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.concurrency.sync import concurrency
from prefect.runtime import flow_run
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from configs.release import REPO_ROOT, ReleaseConfig, concurrency_limit_name, load_releases
from tasks.errors import InputError, PermanentError
from tasks.registry import mlflow_ops
from tasks.registry.candidate import write_candidate_manifest
from tasks.registry.mlflow_ops import TAG_FLOW_RUN, TAG_OUTCOME, TAG_REASON, ReleaseOutcome


class ReleaseStep(StrEnum):
    """The steps of a release, in order."""

    RESOLVE = "resolve"  # read the version from the registry and check it is READY
    DOWNLOAD = "download"  # download the version's artifacts from the registry's artifact store
    PUBLISH = "publish"  # upload them to <destination_prefix>/v<version> (manifest last)
    WARMUP = "warmup"  # pre-pull into the storage initializer / node caches
    ROLLOUT = "rollout"  # canary rollout judged on Prometheus evidence
    PROMOTE = "promote"  # set the champion alias and the outcome tag


class StepFailed(PermanentError):
    """A step's flow finished but reported failure (e.g. warmup verdict not ready)."""


class RolledBack(PermanentError):
    """The canary rollout ended rolled back: the version was judged worse than the stable one."""


class ModelVersionRef(BaseModel):
    """Which model version to release."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="Registered model name in MLflow (configured in configs/releases/).",
                       min_length=1, max_length=256)
    version: StrictInt = Field(description="Model version number (an integer; \"3\" is refused).", ge=1,
                               le=10_000_000)
    alias: str | None = Field(default=None, description="The registry alias that requested it (informational).",
                              max_length=64)
    source: str = Field(default="manual", description="Who asked: a webhook delivery id, 'reconcile' or 'manual'.",
                        max_length=128)


class ReleaseOverrides(BaseModel):
    """Optional overrides of the model's release config for this run."""

    model_config = ConfigDict(extra="forbid")

    inference_service: str | None = Field(default=None, description="Release to this InferenceService instead.",
                                          max_length=63)
    namespace: str | None = Field(default=None, description="Namespace of the InferenceService.", max_length=63)
    destination_prefix: str | None = Field(default=None, description="Publish under this prefix instead.",
                                           max_length=1024)
    canary_policy: str | None = Field(default=None, description="Judge the canary with this policy file.",
                                      max_length=1024)
    force_publish: bool = Field(default=False, description="Replace a published version whose content differs.")


def release_config(request: ModelVersionRef, overrides: ReleaseOverrides | None,
                   releases_dir: str | None = None) -> ReleaseConfig:
    """The model's release config with ``overrides`` applied.

    Raises:
        InputError: no ``configs/releases`` file names the model, or an override is invalid.
    """
    releases = load_releases(releases_dir) if releases_dir else load_releases()
    cfg = releases.get(request.model)
    if cfg is None:
        raise InputError("configs/releases", "registered_model", f"no release config for {request.model!r}",
                         f"add configs/releases/<file>.yaml with registered_model: {request.model}")
    changes = {k: v for k, v in (overrides.model_dump(exclude={"force_publish"}) if overrides else {}).items()
               if v is not None}
    try:
        return ReleaseConfig.model_validate({**cfg.model_dump(), **changes})
    except Exception as exc:
        raise InputError("<parameters>", "overrides", str(exc).splitlines()[0], "fix the override value") from exc


def version_uri(cfg: ReleaseConfig, version: int) -> str:
    """Where version ``version`` is published: ``<destination_prefix>/v<version>``."""
    return f"{cfg.destination_prefix.rstrip('/')}/v{version}"


# --- the steps other flows implement: one line each to wire ------------------------------------------


def _publish(src: Path, dest: str, force: bool) -> dict[str, Any]:
    from flows.publish import publish_model

    return publish_model(src=str(src), dest=dest, force=force)


def _warmup(cfg: ReleaseConfig, storage_uri: str) -> dict[str, Any]:
    from flows.warmup import warmup_model

    # warm the NEW version with the InferenceService's own credentials: a manifest of it serving storage_uri
    with tempfile.TemporaryDirectory(prefix="kaiops-candidate-") as tmp:
        manifest = write_candidate_manifest(cfg.namespace, cfg.inference_service, storage_uri + "/",
                                            str(Path(tmp) / "isvc.yaml"))
        return _require_ok(ReleaseStep.WARMUP, warmup_model(target=manifest, namespace=cfg.namespace))


def _rollout(cfg: ReleaseConfig, storage_uri: str) -> dict[str, Any]:
    from flows.rollout import canary_rollout

    # trailing slash: kserve-storage lists by prefix, so ".../v1" would also pull ".../v10/..."
    summary = canary_rollout(isvc=cfg.inference_service, namespace=cfg.namespace, storage_uri=storage_uri + "/",
                             policy_file=str(REPO_ROOT / cfg.canary_policy))
    if summary.get("phase") != "Succeeded":
        raise RolledBack(f"rollout ended {summary.get('phase')}: {summary.get('message')}")
    return summary


def _require_ok(step: ReleaseStep, summary: dict[str, Any]) -> dict[str, Any]:
    if not summary.get("ok"):
        raise StepFailed(f"{step.value} not ok: {summary.get('verdict') or summary.get('error') or 'no verdict'}")
    return summary


# -----------------------------------------------------------------------------------------------------


class ReleaseFailed(PermanentError):
    """A release step failed; the version is tagged with the step and reason."""


@flow(name="release", log_prints=True)
def release(request: ModelVersionRef, overrides: ReleaseOverrides | None = None,
            dry_run: bool = False) -> dict[str, Any]:
    """Release one model version (see the module docstring for the steps).

    Args:
        request: model name and version (an int; a string from a mis-templated trigger is refused).
        overrides: per-run changes to the model's release config.
        dry_run: resolve and plan only: nothing is published, rolled out or tagged.

    Returns:
        ``{"model", "version", "outcome", "steps": {step: summary}, "storage_uri", "ok"}``.

    Raises:
        InputError: unknown model or bad parameters (before anything changes).
        ReleaseFailed: a step failed (the version is tagged ``failed`` with the reason).
    """
    request = ModelVersionRef.model_validate(request)  # typed at the boundary, whatever the caller sent
    overrides = ReleaseOverrides.model_validate(overrides) if overrides is not None else None
    log = get_run_logger()
    cfg = release_config(request, overrides)
    storage_uri = version_uri(cfg, request.version)
    steps: dict[str, Any] = {}
    with concurrency(concurrency_limit_name(request.model), occupy=1, strict=False):
        info = mlflow_ops.get_version(request.model, request.version)
        steps[ReleaseStep.RESOLVE] = {"source": info.source, "status": info.status, "aliases": list(info.aliases)}
        if info.status != "READY":
            raise ReleaseFailed(f"{request.model} v{request.version} is {info.status}, not READY")
        if info.tags.get(TAG_OUTCOME) == ReleaseOutcome.SUCCEEDED and cfg.champion_alias in info.aliases:
            log.info("%s v%d is already the released %s: nothing to do", request.model, request.version,
                     cfg.champion_alias)
            return _report(request, cfg, storage_uri, "already-released", steps, ok=True)
        if dry_run:
            return _report(request, cfg, storage_uri, "planned", steps, ok=True)
        step = ReleaseStep.DOWNLOAD
        try:
            with tempfile.TemporaryDirectory(prefix="kaiops-release-") as tmp:
                local = mlflow_ops.download_version(request.model, request.version, Path(tmp))
                steps[step] = {"files": sum(1 for p in local.rglob("*") if p.is_file())}
                step = ReleaseStep.PUBLISH
                steps[step] = _publish(local, storage_uri, overrides.force_publish if overrides else False)
            step = ReleaseStep.WARMUP
            steps[step] = _warmup(cfg, storage_uri)
            step = ReleaseStep.ROLLOUT
            steps[step] = _rollout(cfg, storage_uri)
            step = ReleaseStep.PROMOTE
            mlflow_ops.promote(request.model, request.version, cfg.champion_alias, {
                TAG_OUTCOME: ReleaseOutcome.SUCCEEDED.value, TAG_REASON: f"released to {storage_uri}",
                TAG_FLOW_RUN: str(flow_run.id or "")})
            steps[step] = {"alias": cfg.champion_alias}
        except Exception as exc:
            reason = f"{step.value}: {exc}"[:1000]
            outcome = ReleaseOutcome.ROLLED_BACK if isinstance(exc, RolledBack) else ReleaseOutcome.FAILED
            log.error("release of %s v%d failed at %s", request.model, request.version, reason)
            mlflow_ops.record_outcome(request.model, request.version, {
                TAG_OUTCOME: outcome.value, TAG_REASON: reason, TAG_FLOW_RUN: str(flow_run.id or "")})
            _report(request, cfg, storage_uri, outcome.value, steps, ok=False, reason=reason)
            raise ReleaseFailed(reason) from exc
    return _report(request, cfg, storage_uri, ReleaseOutcome.SUCCEEDED.value, steps, ok=True)


def _report(request: ModelVersionRef, cfg: ReleaseConfig, storage_uri: str, outcome: str,
            steps: dict[str, Any], *, ok: bool, reason: str | None = None) -> dict[str, Any]:
    lines = [f"# Release {request.model} v{request.version}: {outcome}", "",
             f"- InferenceService: `{cfg.namespace}/{cfg.inference_service}`", f"- storage URI: `{storage_uri}`",
             f"- requested by: `{request.source}`" + (f" (alias `{request.alias}`)" if request.alias else "")]
    if reason:
        lines.append(f"- reason: {reason}")
    lines += ["", "| step | result |", "|---|---|"]
    lines += [f"| {step} | {summary} |" for step, summary in steps.items()]
    create_markdown_artifact(key="release", markdown="\n".join(lines), description=lines[0].lstrip("# "))
    return {"model": request.model, "version": request.version, "outcome": outcome, "storage_uri": storage_uri,
            "steps": {str(k): v for k, v in steps.items()}, "ok": ok, **({"reason": reason} if reason else {})}
