"""Which registry deliveries start a release, as pure functions over the delivery JSON.

An MLflow delivery body is ``{"entity": ..., "action": ..., "timestamp": ..., "data": {...}}``
(``mlflow/webhooks/delivery.py::_send_webhook_request``); ``data`` for ``model_version.created`` has
``name``, ``version`` (a string), ``source``...; for ``model_version_alias.created`` ``name``, ``alias``,
``version`` (``mlflow/webhooks/types.py``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from configs.inputs import plain_text_problem, positive_int
from configs.release import ReleaseConfig, ReleaseTrigger
from tasks.errors import InputError

RELEASE_EVENT = "kaiops.registry.release-requested"
RESOURCE_PREFIX = "kaiops.model."
_EVENT_NAMESPACE = uuid.UUID("5b0f6f0e-6a53-4a43-9d4b-3c1e0c1f7a10")


class IgnoreReason(StrEnum):
    """Why a valid delivery starts no release."""

    NOT_A_RELEASE_EVENT = "not-a-release-event"  # entity/action is not one kaiops releases on
    UNKNOWN_MODEL = "unknown-model"  # no configs/releases file names this registered model
    OTHER_TRIGGER = "other-trigger"  # the model releases on the other trigger (version vs alias)
    OTHER_ALIAS = "other-alias"  # an alias was set, but not the model's trigger alias


@dataclass(frozen=True)
class PayloadRefused:
    """A delivery whose body is wrong for good (the sender's retry would be the same): HTTP 422 naming the
    field. ``field`` is the dotted path in the body (``data.version``), ``<root>`` for the body itself."""

    field: str
    problem: str
    fix: str

    def as_json(self) -> dict[str, str]:
        """The 422 response body."""
        return {"error": "bad-payload", "field": self.field, "problem": self.problem, "fix": self.fix}


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
    delivery: Any, releases: dict[str, ReleaseConfig], delivery_id: str
) -> ReleaseRequest | IgnoreReason | PayloadRefused:
    """Map a delivery body (parsed JSON, any type) to a :class:`ReleaseRequest`, say why it starts nothing
    (:class:`IgnoreReason`), or refuse it naming the field (:class:`PayloadRefused`). Never raises.

    ``data.version`` is MLflow's version string (or a JSON integer): ASCII digits only, 1..2**31-1 (a
    superscript or Arabic-Indic digit passes ``str.isdigit()`` and is refused here). ``data.name`` is a
    non-empty printable string of at most 256 characters; ``data.alias`` a string.
    """
    if not isinstance(delivery, dict):
        return PayloadRefused("<root>", f"the body is a JSON {type(delivery).__name__}, not an object",
                              "send MLflow's delivery object {entity, action, timestamp, data}")
    kind = (delivery.get("entity"), delivery.get("action"))
    if kind == ("model_version", "created"):
        trigger = ReleaseTrigger.VERSION_CREATED
    elif kind == ("model_version_alias", "created"):
        trigger = ReleaseTrigger.ALIAS_SET
    else:
        return IgnoreReason.NOT_A_RELEASE_EVENT
    data = delivery.get("data")
    if not isinstance(data, dict):
        return PayloadRefused("data", f"{_short(data)} is not an object", "send data: {name, version, ...}")
    name = data.get("name")
    problem = _name_problem(name)
    if problem or not isinstance(name, str):
        return PayloadRefused("data.name", problem or f"{_short(name)} is not a string",
                              "send the registered model's name")
    try:
        version = positive_int(data.get("version"), source="<payload>", field="data.version")
    except InputError as exc:
        return PayloadRefused(exc.field, exc.problem, exc.fix)
    alias = data.get("alias") if trigger is ReleaseTrigger.ALIAS_SET else None
    if trigger is ReleaseTrigger.ALIAS_SET and not isinstance(alias, str):
        return PayloadRefused("data.alias", f"{_short(alias)} is not a string", "send the alias that was set")
    config = releases.get(name)
    if config is None:
        return IgnoreReason.UNKNOWN_MODEL
    if config.trigger is not trigger:
        return IgnoreReason.OTHER_TRIGGER
    if trigger is ReleaseTrigger.ALIAS_SET and alias != config.trigger_alias:
        return IgnoreReason.OTHER_ALIAS
    return ReleaseRequest(model=name, version=version, alias=alias, source=delivery_id)


def _name_problem(name: Any) -> str | None:
    if not isinstance(name, str):
        return f"{_short(name)} is a {type(name).__name__}, not a string"
    if not name.strip():
        return plain_text_problem(name, what="the name") or "the name is blank"
    if len(name) > 256:
        return f"the name is {len(name)} characters long, more than 256"
    if not name.isprintable():
        return "the name contains a control character"
    return None


def _short(value: Any) -> str:
    """``repr`` cut to 60 characters, for messages about a payload value (never raises)."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int past Python's digit limit, a very deep list
        return f"a {type(value).__name__}"
    return text if len(text) <= 60 else text[:57] + "..."
