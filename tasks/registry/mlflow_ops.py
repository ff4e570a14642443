"""MLflow model-registry calls the release and reconcile flows make, as Prefect tasks.

Each task is one I/O concern against ``MLFLOW_TRACKING_URI`` (MLflow's client reads it). MLflow errors
are translated: RESOURCE_DOES_NOT_EXIST / INVALID_PARAMETER_VALUE are :class:`PermanentError`, everything
else (connection refused, 5xx) :class:`TemporaryError`; only the latter are retried.
"""

from __future__ import annotations

import contextlib
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import task
from pydantic import BaseModel, ConfigDict, Field

from tasks.errors import PermanentError, TemporaryError, io_retries

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.webhook import WebhookEvent, WebhookEventStr

#: Version tags kaiops writes on a release.
TAG_OUTCOME = "kaiops.release.outcome"
TAG_REASON = "kaiops.release.reason"
TAG_FLOW_RUN = "kaiops.release.flow-run"
#: Events the receiver subscribes to (``mlflow/entities/webhook.py``).
WEBHOOK_EVENTS: tuple[WebhookEventStr, ...] = ("model_version.created", "model_version_alias.created")


class ReleaseOutcome(StrEnum):
    """The outcome tag value on a model version."""

    SUCCEEDED = "succeeded"  # rolled out to 100% and aliased champion
    FAILED = "failed"  # a step failed; TAG_REASON says which and why
    ROLLED_BACK = "rolled-back"  # the canary judged the version worse and traffic went back


class VersionInfo(BaseModel):
    """What the release flow needs to know about one model version."""

    model_config = ConfigDict(frozen=True)

    model: str
    version: int = Field(ge=1)
    source: str = Field(description="The version's source URI (models:/<id>, runs:/..., s3://...).")
    run_id: str | None = None
    status: str = Field(description="MLflow registration status: READY, PENDING_REGISTRATION, FAILED_REGISTRATION.")
    aliases: tuple[str, ...] = ()
    tags: dict[str, str] = Field(default_factory=dict)


def client() -> MlflowClient:
    """An :class:`mlflow.MlflowClient` on ``$MLFLOW_TRACKING_URI`` (imported lazily: mlflow is heavy)."""
    from mlflow import MlflowClient

    return MlflowClient()


def _translate(exc: Exception, what: str) -> Exception:
    code = getattr(exc, "error_code", "")
    if code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS", "BAD_REQUEST"):
        return PermanentError(f"{what}: {code}: {str(exc)[:300]}")
    return TemporaryError(f"{what}: {exc.__class__.__name__}: {str(exc)[:300]}")


_io = io_retries(3, [1, 3, 10])


def version_info(model: str, version: int) -> VersionInfo:
    """Read one model version (pure I/O, no Prefect).

    Raises:
        PermanentError: the model or version does not exist.
        TemporaryError: MLflow is unreachable.
    """
    try:
        mv = client().get_model_version(model, str(version))
    except Exception as exc:
        raise _translate(exc, f"reading {model} v{version}") from exc
    return VersionInfo(model=model, version=int(mv.version), source=mv.source, run_id=mv.run_id,
                       status=str(mv.status), aliases=tuple(mv.aliases or ()), tags=dict(mv.tags or {}))


@task(name="registry-version", **_io)
def get_version(model: str, version: int) -> VersionInfo:
    """Prefect task around :func:`version_info`."""
    return version_info(model, version)


@task(name="registry-download", **_io)
def download_version(model: str, version: int, dest: Path) -> Path:
    """Download the artifacts of ``model`` version ``version`` into ``dest``; return the local directory.

    Uses ``models:/<model>/<version>``, which MLflow resolves to the version's source (a logged model, a
    run's artifacts or a URI) and downloads with its own artifact repository.

    Raises:
        PermanentError: the version does not exist or has no artifacts.
        TemporaryError: MLflow or the artifact store is unreachable.
    """
    import mlflow.artifacts

    dest.mkdir(parents=True, exist_ok=True)
    try:
        local = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{model}/{version}", dst_path=str(dest))
    except Exception as exc:
        raise _translate(exc, f"downloading {model} v{version}") from exc
    path = Path(local)
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        raise PermanentError(f"{model} v{version}: the download is empty (source has no artifacts)")
    return path


def set_alias(model: str, alias: str, version: int) -> None:
    """Point ``alias`` of ``model`` at ``version`` (moves it if set elsewhere; idempotent)."""
    try:
        client().set_registered_model_alias(model, alias, str(version))
    except Exception as exc:
        raise _translate(exc, f"setting alias {alias} of {model}") from exc


def tag_version(model: str, version: int, tags: dict[str, str]) -> None:
    """Set ``tags`` on a model version (each value at most 5000 characters, MLflow's limit)."""
    c = client()
    try:
        for key, value in tags.items():
            c.set_model_version_tag(model, str(version), key, value[:5000])
    except Exception as exc:
        raise _translate(exc, f"tagging {model} v{version}") from exc


@task(name="registry-promote", **_io)
def promote(model: str, version: int, alias: str, tags: dict[str, str]) -> None:
    """Set the champion ``alias`` on the version and record the outcome ``tags``."""
    tag_version(model, version, tags)
    set_alias(model, alias, version)


@task(name="registry-record-outcome", **_io)
def record_outcome(model: str, version: int, tags: dict[str, str]) -> None:
    """Record a release outcome (and reason) on the version; aliases stay as they are."""
    tag_version(model, version, tags)


def aliases(model: str) -> dict[str, int]:
    """``{alias: version}`` of a registered model.

    Raises:
        PermanentError: no such registered model.
    """
    try:
        rm = client().get_registered_model(model)
    except Exception as exc:
        raise _translate(exc, f"reading registered model {model}") from exc
    return {alias: int(v) for alias, v in (rm.aliases or {}).items()}


def latest_version(model: str) -> int | None:
    """The highest version number of ``model`` (None when it has no versions)."""
    try:
        versions = client().search_model_versions(f"name = '{model}'")
    except Exception as exc:
        raise _translate(exc, f"listing versions of {model}") from exc
    return max((int(v.version) for v in versions), default=None)


class WebhookChange(StrEnum):
    """What :func:`ensure_webhook` did."""

    CREATED = "created"  # no webhook of that name existed
    UPDATED = "updated"  # url, events or secret changed
    UNCHANGED = "unchanged"  # it already matched


def ensure_webhook(name: str, url: str, secret: str, *, rotate_secret: bool = False) -> tuple[WebhookChange, str]:
    """Create or update the MLflow webhook ``name`` that posts model-registry events to ``url``.

    MLflow never returns a stored secret, so an existing webhook with the same url and events is left
    alone unless ``rotate_secret``.

    Returns:
        (what changed, the webhook id).
    """
    c = client()
    existing: Any = None
    with contextlib.suppress(Exception):
        for hook in c.list_webhooks(max_results=1000):
            if hook.name == name:
                existing = hook
                break
    events: list[WebhookEventStr | WebhookEvent] = list(WEBHOOK_EVENTS)
    try:
        if existing is None:
            hook = c.create_webhook(name=name, url=url, events=events, secret=secret,
                                    description="kaiops registry receiver: starts releases")
            return WebhookChange.CREATED, hook.webhook_id
        current = sorted(f"{e.entity.value}.{e.action.value}" for e in existing.events)
        if existing.url == url and current == sorted(WEBHOOK_EVENTS) and not rotate_secret:
            return WebhookChange.UNCHANGED, existing.webhook_id
        c.update_webhook(existing.webhook_id, url=url, events=events, secret=secret)
        return WebhookChange.UPDATED, existing.webhook_id
    except Exception as exc:
        raise _translate(exc, f"configuring MLflow webhook {name}") from exc
