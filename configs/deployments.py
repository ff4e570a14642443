"""The schema of ``deployments/prefect.yaml``: every key kaiops uses, nothing else.

Prefect ignores unknown keys in prefect.yaml silently (a misspelt ``schedules`` is no schedule at all), so
:func:`load_project` renders ``"{{ $VAR }}"`` values from the environment (:func:`render_env`) and validates
the file against :class:`ProjectSpec` before anything is registered; an unknown key, a missing variable or an
unknown timezone is an :class:`InputError` naming the field. Registering it is
:mod:`tasks.prefect_admin`'s job, not this module's.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from configs.errors import InputError

REPO_ROOT = Path(__file__).resolve().parent.parent
PREFECT_YAML = REPO_ROOT / "deployments" / "prefect.yaml"
_STRICT = ConfigDict(extra="forbid", populate_by_name=True)
_ENV_TEMPLATE = re.compile(r"\{\{\s*\$([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class ScheduleSpec(BaseModel):
    """One schedule: ``cron`` or ``interval`` (seconds), with a timezone."""

    model_config = _STRICT
    cron: str | None = Field(default=None, description="Cron expression (5 fields).")
    interval: float | None = Field(default=None, gt=0, description="Interval in seconds.")
    timezone: str = Field(default="UTC", description="IANA timezone the schedule is read in.")
    active: bool = Field(default=True, description="Whether the scheduler creates runs for it.")

    @model_validator(mode="after")
    def _one_kind(self) -> ScheduleSpec:
        if (self.cron is None) == (self.interval is None):
            raise ValueError("give exactly one of cron or interval")
        return self


class ConcurrencySpec(BaseModel):
    """Deployment-level concurrency limit."""

    model_config = _STRICT
    limit: int = Field(ge=1, le=1000, description="Runs of this deployment at once.")
    collision_strategy: Literal["ENQUEUE", "CANCEL_NEW"] = Field(default="ENQUEUE",
                                                                 description="What happens to a run over the limit.")


class WorkPoolSpec(BaseModel):
    """The work pool a deployment runs on."""

    model_config = _STRICT
    name: str = Field(min_length=1, description="Work pool name.")
    work_queue_name: str = Field(default="default", description="Queue inside the pool.")
    job_variables: dict[str, Any] = Field(default_factory=dict, description="Overrides of the pool's job template.")


class TriggerSpec(BaseModel):
    """An event trigger that runs the deployment (Prefect ``DeploymentEventTrigger``)."""

    model_config = _STRICT
    type: Literal["event"] = "event"
    name: str = Field(min_length=1, description="Automation name prefix.")
    description: str = ""
    enabled: bool = True
    match: dict[str, str | list[str]] = Field(description="Resource labels the event must match.")
    match_related: dict[str, str | list[str]] | list[dict[str, str | list[str]]] = Field(default_factory=dict)
    expect: list[str] = Field(min_length=1, description="Event names that fire the trigger.")
    after: list[str] = Field(default_factory=list)
    for_each: list[str] = Field(default_factory=list)
    posture: Literal["Reactive", "Proactive"] = "Reactive"
    threshold: int = Field(default=1, ge=1)
    within: float = Field(default=0, ge=0)
    parameters: dict[str, Any] = Field(default_factory=dict, description="Run parameters (Jinja templates).")


class DeploymentSpec(BaseModel):
    """One deployment."""

    model_config = _STRICT
    name: str = Field(min_length=1)
    entrypoint: str = Field(pattern=r"^[\w/.\-]+\.py:\w+$", description="path/to/file.py:function.")
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)
    schedules: list[ScheduleSpec] = Field(default_factory=list)
    concurrency_limit: ConcurrencySpec | None = None
    work_pool: WorkPoolSpec
    triggers: list[TriggerSpec] = Field(default_factory=list)


class ProjectSpec(BaseModel):
    """The whole of ``deployments/prefect.yaml``."""

    model_config = _STRICT
    name: str
    prefect_version: str = Field(alias="prefect-version")
    pull: list[dict[str, dict[str, Any]]] = Field(default_factory=list)
    definitions: dict[str, Any] = Field(default_factory=dict, description="YAML anchors only.")
    deployments: list[DeploymentSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> ProjectSpec:
        seen: set[tuple[str, str]] = set()
        for d in self.deployments:
            key = (d.entrypoint, d.name)
            if key in seen:
                raise ValueError(f"deployment {d.name} of {d.entrypoint} is listed twice")
            seen.add(key)
        return self


def render_env(value: Any, env: dict[str, str]) -> Any:
    """Replace ``{{ $VAR }}`` in every string of ``value`` (recursively) from ``env``.

    Raises:
        InputError: a referenced variable is not set.
    """
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            if m.group(1) not in env:
                raise InputError(str(PREFECT_YAML), "-", f"${m.group(1)} is not set", f"export {m.group(1)}=...")
            return env[m.group(1)]
        return _ENV_TEMPLATE.sub(sub, value)
    if isinstance(value, dict):
        return {k: render_env(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [render_env(v, env) for v in value]
    return value


def default_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The environment :func:`load_project` renders with: ``KAIOPS_TIMEZONE`` (default UTC) and
    ``KAIOPS_HOME`` (default the repository root) added to ``environ``."""
    env = dict(os.environ if environ is None else environ)
    env.setdefault("KAIOPS_TIMEZONE", "UTC")
    env.setdefault("KAIOPS_HOME", str(REPO_ROOT))
    return env


def load_project(path: Path = PREFECT_YAML, env: dict[str, str] | None = None) -> ProjectSpec:
    """Read, render and validate prefect.yaml.

    Raises:
        InputError: not YAML, an unknown key, a missing variable or an invalid timezone.
    """
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(str(path), "-", f"unreadable: {exc}", "fix the file") from exc
    raw = render_env(raw, default_env(env))
    try:
        spec = ProjectSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "-"
        raise InputError(str(path), field, first["msg"], "see configs/deployments.py ProjectSpec") from exc
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    for i, d in enumerate(spec.deployments):
        for j, s in enumerate(d.schedules):
            try:
                ZoneInfo(s.timezone)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise InputError(str(path), f"deployments.{i}.schedules.{j}.timezone", f"unknown timezone "
                                 f"{s.timezone!r}", "use an IANA name such as Europe/Berlin") from exc
    return spec
