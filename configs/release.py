"""Release configuration: which registered model (MLflow) is released to which InferenceService, and how.

One file per registered model under ``configs/releases/*.yaml``. The registry receiver
(``kaiops registry serve``) and the ``reconcile`` flow map a registry event to its release with
:func:`load_releases`; the ``release`` flow reads the InferenceService, namespace, destination prefix and
canary policy from it. Execution settings (task runner for fan-out) live in :class:`ExecutionConfig`.

Export the JSON Schema for editors: ``python -m configs.release``.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from configs.loading import load_model
from tasks.errors import InputError

RELEASES_DIR = Path(__file__).parent / "releases"
_STRICT = ConfigDict(extra="forbid", frozen=True)
_DNS1123 = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class ReleaseTrigger(StrEnum):
    """Which registry action starts a release."""

    VERSION_CREATED = "version_created"  # a new model version is registered (MLflow ``model_version.created``)
    ALIAS_SET = "alias_set"  # an alias (e.g. ``challenger``) is set on a version (``model_version_alias.created``)


class ReleaseConfig(BaseModel):
    """How one registered model is released."""

    model_config = _STRICT

    registered_model: str = Field(
        description="Registered model name in the MLflow registry (case-sensitive).", min_length=1, max_length=256
    )
    inference_service: str = Field(
        description="Name of the KServe InferenceService serving this model.", pattern=_DNS1123, max_length=63
    )
    namespace: str = Field(description="Namespace of the InferenceService.", pattern=_DNS1123, max_length=63)
    destination_prefix: str = Field(
        description="Object-store prefix the published versions go under, e.g. s3://models/churn "
        "(version N lands in <prefix>/v<N>/).",
        pattern=r"^(s3|gs)://[a-z0-9][a-z0-9.\-_]{1,62}(/[^\s]*)?$",
    )
    canary_policy: str = Field(
        default="configs/canary/default.yaml",
        description="Canary policy file (relative to the repository root) the rollout is judged by.",
        min_length=1,
    )
    trigger: ReleaseTrigger = Field(
        default=ReleaseTrigger.ALIAS_SET, description="Which registry action starts a release."
    )
    trigger_alias: str = Field(
        default="challenger",
        description="With trigger alias_set: the alias whose setting starts a release.",
        pattern=r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$",
    )
    champion_alias: str = Field(
        default="champion",
        description="Alias set on the version once its rollout succeeded.",
        pattern=r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$",
    )

    @model_validator(mode="after")
    def _aliases_differ(self) -> Self:
        if self.trigger_alias == self.champion_alias:
            raise ValueError("trigger_alias and champion_alias must differ (setting champion would re-trigger)")
        return self


class TaskRunnerKind(StrEnum):
    """Where a flow's mapped tasks run."""

    LOCAL = "local"  # threads in the flow-run process (Prefect's ThreadPoolTaskRunner)
    RAY = "ray"  # tasks on a Ray cluster (prefect-ray's RayTaskRunner)


class ExecutionConfig(BaseModel):
    """How fan-out flows (fleet backups, drills, bulk publishing) run their per-item tasks."""

    model_config = _STRICT

    task_runner: TaskRunnerKind = Field(default=TaskRunnerKind.LOCAL, description="local or ray.")
    ray_address: str | None = Field(
        default=None,
        description="With ray: the address ray.init connects to: host:<GCS port> (a driver on the cluster's "
        "network) or ray://host:10001 (Ray Client). Not the dashboard URL. Default: a local Ray.",
        max_length=512,
    )
    max_workers: int = Field(default=4, ge=1, le=256, description="With local: threads running tasks at once.")


def load_release(path: str | Path) -> ReleaseConfig:
    """Read and validate one release YAML file.

    Raises:
        InputError: missing, not YAML, or invalid (with the field path and a fix).
    """
    return load_model(path, ReleaseConfig, example='configs/releases/sandbox-demo.yaml')


def load_releases(directory: str | Path = RELEASES_DIR) -> dict[str, ReleaseConfig]:
    """Read every ``*.yaml`` in ``directory``; return ``{registered model name: config}``.

    Raises:
        InputError: a file is invalid, or two files name the same registered model.
    """
    out: dict[str, ReleaseConfig] = {}
    seen: dict[str, Path] = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        cfg = load_release(path)
        if cfg.registered_model in out:
            raise InputError(str(path), "registered_model", f"{cfg.registered_model!r} is also configured in "
                             f"{seen[cfg.registered_model]}", "keep one release file per registered model")
        out[cfg.registered_model] = cfg
        seen[cfg.registered_model] = path
    return out


def concurrency_limit_name(model: str) -> str:
    """Name of the Prefect global concurrency limit that lets one release of ``model`` run at a time."""
    return "kaiops-release-" + re.sub(r"[^A-Za-z0-9_.\-]", "_", model)


def json_schema() -> dict:
    """JSON Schema of :class:`ReleaseConfig` (for editors)."""
    return ReleaseConfig.model_json_schema()


if __name__ == "__main__":
    print(json.dumps(json_schema(), indent=2))
