"""Which registry deliveries start a release, as pure functions over the delivery JSON.

An MLflow delivery body is ``{"entity": ..., "action": ..., "timestamp": ..., "data": {...}}``
(``mlflow/webhooks/delivery.py::_send_webhook_request``); ``data`` for ``model_version.created`` has
``name``, ``version`` (a string), ``source``...; for ``model_version_alias.created`` ``name``, ``alias``,
``version`` (``mlflow/webhooks/types.py``).
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from configs.release import ReleaseConfig, ReleaseTrigger

RELEASE_EVENT = "kaiops.registry.release-requested"
RESOURCE_PREFIX = "kaiops.model."
_EVENT_NAMESPACE = uuid.UUID("5b0f6f0e-6a53-4a43-9d4b-3c1e0c1f7a10")


class IgnoreReason(StrEnum):
    """Why a valid delivery starts no release."""

    NOT_A_RELEASE_EVENT = "not-a-release-event"  # entity/action is not one kaiops releases on
    UNKNOWN_MODEL = "unknown-model"  # no configs/releases file names this registered model
    OTHER_TRIGGER = "other-trigger"  # the model releases on the other trigger (version vs alias)
    OTHER_ALIAS = "other-alias"  # an alias was set, but not the model's trigger alias
    BAD_PAYLOAD = "bad-payload"  # name/version missing or version not a positive integer


class ReleaseRequest(BaseModel):
    """A request to release one model version (the Prefect event payload)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(description="Registered model name.", min_length=1)
    version: int = Field(description="Model version number.", ge=1)
    alias: str | None = Field(default=None, description="The alias whose setting triggered the release, if any.")
    source: str = Field(description="What asked: a webhook delivery id or 'reconcile'.", min_length=1)


def resource_id(model: str) -> str:
    """Prefect resource id of a registered model: ``kaiops.model.<name>``."""
    return RESOURCE_PREFIX + model


def event_id(request: ReleaseRequest) -> uuid.UUID:
    """Deterministic event id: the same request (same delivery) always gives the same Prefect event id."""
    return uuid.uuid5(_EVENT_NAMESPACE, f"{request.model}\0{request.version}\0{request.alias}\0{request.source}")


def to_request(
    delivery: dict[str, Any], releases: dict[str, ReleaseConfig], delivery_id: str
) -> ReleaseRequest | IgnoreReason:
    """Map a delivery body to a :class:`ReleaseRequest`, or say why it starts nothing."""
    kind = (delivery.get("entity"), delivery.get("action"))
    data = delivery.get("data") or {}
    if kind == ("model_version", "created"):
        trigger = ReleaseTrigger.VERSION_CREATED
    elif kind == ("model_version_alias", "created"):
        trigger = ReleaseTrigger.ALIAS_SET
    else:
        return IgnoreReason.NOT_A_RELEASE_EVENT
    name, version = data.get("name"), str(data.get("version", ""))
    if not isinstance(name, str) or not name or not version.isdigit() or int(version) < 1:
        return IgnoreReason.BAD_PAYLOAD
    config = releases.get(name)
    if config is None:
        return IgnoreReason.UNKNOWN_MODEL
    if config.trigger is not trigger:
        return IgnoreReason.OTHER_TRIGGER
    alias = data.get("alias") if trigger is ReleaseTrigger.ALIAS_SET else None
    if trigger is ReleaseTrigger.ALIAS_SET and alias != config.trigger_alias:
        return IgnoreReason.OTHER_ALIAS
    return ReleaseRequest(model=name, version=int(version), alias=alias, source=delivery_id)
