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
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from configs.errors import InputError
from configs.loading import load_model

RELEASES_DIR = Path(__file__).parent / "releases"
REPO_ROOT = Path(__file__).resolve().parent.parent  # canary_policy paths are relative to it
_STRICT = ConfigDict(extra="forbid", frozen=True)
_DNS1123 = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
#: Environment variable names that hold credentials (never copied into Ray's runtime_env).
_SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|CREDENTIAL|ACCESS_KEY|PRIVATE|_KEY$|^KEY$", re.IGNORECASE)


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
        "network) or ray://host:10001 (Ray Client); never the dashboard URL (what Ray's job CLI and the sandbox "
        "export as RAY_ADDRESS). Unset: $KAIOPS_RAY_INIT_ADDRESS, else a local Ray started for the run.",
        max_length=512,
    )
    max_workers: int = Field(default=4, ge=1, le=256, description="With local: threads running tasks at once.")
    ray_env: list[str] = Field(
        default_factory=list, max_length=64,
        description="With ray: names of NON-secret environment variables copied from the flow-run process into "
        "the Ray job's runtime_env (e.g. AWS_ENDPOINT_URL, AWS_DEFAULT_REGION). Ray stores runtime_env in its job "
        "table and logs it, so names that look like credentials are refused: use ray_secret_blocks for those.",
    )
    ray_secret_blocks: dict[str, str] = Field(
        default_factory=dict, max_length=32,
        description="With ray: environment variable -> Prefect Secret block name. Each task on a Ray worker loads "
        "the blocks through the Prefect API and sets the variables missing from its worker's environment "
        "(e.g. AWS_SECRET_ACCESS_KEY, KAIOPS_BACKUP_KEY). Values never pass through Ray's runtime_env.",
    )

    @model_validator(mode="after")
    def _addresses_and_env(self) -> Self:
        if self.ray_address and re.match(r"^https?://", self.ray_address):
            raise ValueError(
                f"ray_address {self.ray_address!r} is a dashboard (Job Submission API) URL; ray.init needs the GCS "
                "address host:<port> (port 6379 on KubeRay heads) or ray://host:10001 (Ray Client)"
            )
        if self.ray_address is not None:
            from configs.inputs import ray_address_problem

            problem = ray_address_problem(self.ray_address)
            if problem:
                raise ValueError(f"ray_address: {problem} (GCS address host:6379 or Ray Client ray://host:10001)")
        for name in [*self.ray_env, *self.ray_secret_blocks]:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$", name):
                raise ValueError(f"{name!r} is not an environment variable name")
        risky = [n for n in self.ray_env if _SECRET_NAME.search(n)]
        if risky:
            raise ValueError(f"ray_env would copy {', '.join(risky)} into Ray's runtime_env (stored and logged by "
                             "Ray); name them in ray_secret_blocks (variable -> Prefect Secret block) instead")
        for name, block in self.ray_secret_blocks.items():
            if not re.match(_DNS1123, block) or len(block) > 128:
                raise ValueError(f"ray_secret_blocks[{name}]: {block!r} is not a Prefect block name "
                                 "(lowercase letters, digits and dashes)")
        return self


def load_release(path: str | Path) -> ReleaseConfig:
    """Read and validate one release YAML file.

    Raises:
        InputError: missing, not YAML, or invalid (with the field path and a fix).
    """
    return load_model(path, ReleaseConfig, example='configs/releases/sandbox-demo.yaml')


def load_releases(directory: str | Path = RELEASES_DIR) -> dict[str, ReleaseConfig]:
    """Read every ``*.yaml`` in ``directory``; return ``{registered model name: config}``.

    Raises:
        InputError: the directory is missing or holds no ``*.yaml``, a file is invalid, its ``canary_policy``
            is missing or invalid, or two files name the same registered model.
    """
    from configs.canary import load_policy

    base = Path(directory)
    if not base.is_dir():
        raise InputError(str(base), "<root>", "not a directory", f"pass a directory of release configs such as "
                         f"{RELEASES_DIR}")
    paths = sorted(base.glob("*.yaml"))
    if not paths:
        raise InputError(str(base), "<root>", "no release configs (*.yaml) in it",
                         "add one per registered model, like configs/releases/sandbox-demo.yaml")
    out: dict[str, ReleaseConfig] = {}
    seen: dict[str, Path] = {}
    for path in paths:
        cfg = load_release(path)
        policy = Path(cfg.canary_policy)
        policy = policy if policy.is_absolute() else REPO_ROOT / policy
        try:
            load_policy(policy)
        except InputError as exc:
            raise InputError(str(path), "canary_policy", f"{cfg.canary_policy}: {exc}",
                             "point it at a valid policy such as configs/canary/default.yaml") from exc
        if cfg.registered_model in out:
            raise InputError(str(path), "registered_model", f"{cfg.registered_model!r} is also configured in "
                             f"{seen[cfg.registered_model]}", "keep one release file per registered model")
        out[cfg.registered_model] = cfg
        seen[cfg.registered_model] = path
    return out


def concurrency_limit_name(model: str) -> str:
    """Name of the Prefect global concurrency limit that lets one release of ``model`` run at a time."""
    return "kaiops-release-" + re.sub(r"[^A-Za-z0-9_.\-]", "_", model)


def json_schema() -> dict[str, Any]:
    """JSON Schema of :class:`ReleaseConfig` (for editors)."""
    return ReleaseConfig.model_json_schema()


if __name__ == "__main__":
    print(json.dumps(json_schema(), indent=2))
