"""A Ray cluster as a platform engineer describes it: one YAML file per cluster and environment.

``configs/clusters/<environment>.yaml`` is typed by :class:`RayClusterConfig` (unknown keys refused, every
field described and bounded). :func:`load_cluster_config` reads a file and turns every validation error into
an :class:`~tasks.errors.InputError` naming the file, the field path and the fix. ``tasks.ray.manifest`` renders
the model to a KubeRay ``RayCluster``; :func:`json_schema` is what editors use (``configs/schemas/``).

Kubernetes quantities (``500m``, ``8Gi``) are read by :mod:`configs.quantity`.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.fields import FieldInfo

from configs.loading import load_model
from configs.quantity import parse_quantity, quantity_text, quantity_value

SCHEMA_PATH = Path(__file__).parent / "schemas" / "ray-cluster.schema.json"


class Environment(StrEnum):
    """Where a cluster runs."""

    sandbox = "sandbox"  # the local sandbox (tests, demo)
    development = "development"  # a shared dev cluster
    staging = "staging"  # pre-production, production-shaped
    production = "production"  # serves users


class UpgradeStrategy(StrEnum):
    """KubeRay ``spec.upgradeStrategy.type`` (ray-operator/apis/ray/v1/raycluster_types.go)."""

    recreate = "Recreate"  # a pod-template change deletes and recreates every Ray pod (head included)
    none = "None"  # running pods keep their old template; only new pods get the new one


_STRICT = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)
DNS1035 = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
_LABEL_KEY = r"^([a-z0-9.-]+/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
LabelMap = dict[
    Annotated[str, Field(min_length=1, max_length=253, pattern=_LABEL_KEY)],
    Annotated[str, Field(max_length=63, pattern=r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")],
]


_ResourceName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_:./-]*$")]


class Resources(BaseModel):
    """Container resources of one Ray pod (requests = limits, as the KubeRay docs recommend)."""

    model_config = _STRICT
    cpu: str = Field(description="CPU as a Kubernetes quantity (1, 500m); KubeRay derives `num-cpus` from it",
                     max_length=32)
    memory: str = Field(description="Memory as a Kubernetes quantity (512Mi, 8Gi); KubeRay derives `memory`",
                        max_length=32)
    gpu: int = Field(0, ge=0, le=16, description="nvidia.com/gpu limit per pod; KubeRay derives `num-gpus`")

    @field_validator("cpu", "memory")
    @classmethod
    def _is_quantity(cls, value: str) -> str:
        if parse_quantity(value) <= 0:
            raise ValueError(f"{value!r} must be more than zero")
        return quantity_text(value)


class RayStartParams(BaseModel):
    """``rayStartParams`` as typed fields; each becomes ``ray start --<key>=<value>`` (KubeRay pod.go
    ``convertParamMap``). Sizes accept quantities and are rendered as integer bytes, as ``ray start`` wants."""

    model_config = _STRICT
    num_cpus: int | None = Field(None, alias="num-cpus", ge=0, le=1024,
                                 description="Logical CPUs Ray schedules on (default: the container's CPU limit)")
    num_gpus: int | None = Field(None, alias="num-gpus", ge=0, le=64, description="Logical GPUs")
    memory: int | str | None = Field(None, description="Ray `memory` resource; integer bytes or a quantity (8Gi)")
    object_store_memory: int | str | None = Field(
        None, alias="object-store-memory", description="Plasma store size; integer bytes or a quantity (>= 75Mi)"
    )
    resources: dict[_ResourceName, Annotated[float, Field(ge=0)]] | None = Field(
        None, description="Custom Ray resources ({name: amount}); CPU/GPU go in num-cpus/num-gpus"
    )
    dashboard_host: str | None = Field(None, alias="dashboard-host", max_length=64,
                                       description="Dashboard bind address (KubeRay default 0.0.0.0)")
    include_dashboard: bool | None = Field(None, alias="include-dashboard",
                                           description="Start the dashboard (Job Submission API); keep it on")
    log_style: Literal["auto", "record", "pretty"] | None = Field(None, alias="log-style",
                                                                 description="`ray start` log style")
    system_config: dict[str, Any] | None = Field(None, alias="system-config",
                                                 description="Ray internal system config (JSON object); experts only")

    @field_validator("memory", "object_store_memory")
    @classmethod
    def _bytes(cls, value: int | str | None) -> int | None:
        if value is None:
            return None
        size = quantity_value(value)
        if size <= 0:
            raise ValueError("must be more than zero bytes")
        return size

    @field_validator("object_store_memory")
    @classmethod
    def _min_object_store(cls, value: int | None) -> int | None:
        if value is not None and value < 75 * 2**20:
            raise ValueError(f"{value} bytes is below Ray's minimum object store of 75Mi (78643200 bytes)")
        return value

    @field_validator("resources")
    @classmethod
    def _no_cpu_gpu(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value and {"CPU", "GPU"} & set(value):
            raise ValueError("Ray refuses CPU/GPU inside resources; use num-cpus / num-gpus")
        return value

    def as_params(self) -> dict[str, str]:
        """The ``rayStartParams`` map: every value a string, sizes in integer bytes, resources as JSON."""
        out: dict[str, str] = {}
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if value is None:
                continue
            key = field.alias or name
            if isinstance(value, bool):
                out[key] = "true" if value else "false"
            elif isinstance(value, dict):
                out[key] = "'" + json.dumps(value, separators=(",", ":"), sort_keys=True) + "'"
            else:
                out[key] = str(value)
        return out


class HeadGroup(BaseModel):
    """The Ray head: GCS, dashboard (Job Submission API), client server."""

    model_config = _STRICT
    resources: Resources = Field(description="Head container resources")
    ray_start_params: RayStartParams = Field(default_factory=RayStartParams, alias="rayStartParams",
                                             description="`ray start` parameters of the head")
    service_type: Literal["ClusterIP", "NodePort", "LoadBalancer"] = Field(
        "ClusterIP", alias="serviceType", description="Type of the head Service KubeRay creates"
    )
    labels: LabelMap = Field(default_factory=dict, description="Extra labels on the head pod")


class Toleration(BaseModel):
    """A Pod toleration (core/v1 ``Toleration``), e.g. for the ``nvidia.com/gpu`` taint of GPU nodes."""

    model_config = _STRICT
    key: str | None = Field(None, max_length=253, pattern=_LABEL_KEY,
                            description="Taint key to tolerate (empty with operator Exists: every taint)")
    operator: Literal["Exists", "Equal"] = Field("Equal", description="Exists (any value) or Equal (`value`)")
    value: str | None = Field(None, max_length=63, description="Taint value (operator Equal)")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        None, description="Taint effect to tolerate (empty: every effect)")
    toleration_seconds: int | None = Field(None, alias="tolerationSeconds", ge=0, le=86400 * 365,
                                           description="With NoExecute: seconds the Pod stays after the taint")

    @model_validator(mode="after")
    def _shape(self) -> Toleration:
        if self.operator == "Exists" and self.value:
            raise ValueError("operator Exists takes no value (remove value, or use operator Equal)")
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise ValueError("tolerationSeconds applies only to effect NoExecute")
        return self

    def as_manifest(self) -> dict[str, Any]:
        """The toleration as a Pod spec item (unset fields left out)."""
        return self.model_dump(by_alias=True, exclude_none=True)


class WorkerGroup(BaseModel):
    """One worker group: identical Ray worker pods, scaled between min and max."""

    model_config = _STRICT
    name: str = Field(description="groupName (DNS-1035 label)", min_length=1, max_length=63, pattern=DNS1035)
    replicas: int = Field(description="Desired workers (the autoscaler changes it when autoscaling is on)",
                          ge=0, le=1000)
    min_replicas: int = Field(0, alias="minReplicas", ge=0, le=1000, description="Lower bound for replicas")
    max_replicas: int = Field(alias="maxReplicas", ge=0, le=1000, description="Upper bound for replicas")
    suspend: bool = Field(False, description="Delete this group's workers but keep the group (KubeRay 1.2+)")
    resources: Resources = Field(description="Worker container resources")
    ray_start_params: RayStartParams = Field(default_factory=RayStartParams, alias="rayStartParams",
                                             description="`ray start` parameters of the workers")
    labels: LabelMap = Field(default_factory=dict, description="Extra labels on the worker pods")
    node_selector: LabelMap = Field(default_factory=dict, alias="nodeSelector",
                                    description="Node labels the worker Pods require, e.g. "
                                                "{nvidia.com/gpu.present: 'true'} for GPU nodes")
    tolerations: list[Toleration] = Field(default_factory=list, max_length=16,
                                          description="Taints the worker Pods tolerate, e.g. "
                                                      "{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}")

    @model_validator(mode="after")
    def _bounds(self) -> WorkerGroup:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"minReplicas {self.min_replicas} is above maxReplicas {self.max_replicas}")
        if not self.min_replicas <= self.replicas <= self.max_replicas:
            raise ValueError(
                f"replicas {self.replicas} is outside [minReplicas {self.min_replicas}, "
                f"maxReplicas {self.max_replicas}] (KubeRay would clamp it silently)"
            )
        return self


class Autoscaling(BaseModel):
    """KubeRay in-tree autoscaling (``enableInTreeAutoscaling`` + ``autoscalerOptions``)."""

    model_config = _STRICT
    enabled: bool = Field(False, description="Run the Ray autoscaler sidecar; it owns workerGroupSpecs[].replicas")
    idle_timeout_seconds: int = Field(60, alias="idleTimeoutSeconds", ge=1, le=86400,
                                      description="Seconds an idle worker lives before the autoscaler removes it")
    upscaling_mode: Literal["Default", "Aggressive", "Conservative"] = Field(
        "Default", alias="upscalingMode", description="How fast the autoscaler adds workers"
    )


class SecretKey(BaseModel):
    """A key of a Secret in the cluster's namespace (``secretKeyRef``)."""

    model_config = _STRICT
    name: str = Field(description="Secret name (in the RayCluster's namespace)", min_length=1, max_length=253,
                      pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    key: str = Field(description="Key in the Secret's data", min_length=1, max_length=253,
                     pattern=r"^[-._a-zA-Z0-9]+$")


class GcsFaultTolerance(BaseModel):
    """KubeRay ``spec.gcsFaultToleranceOptions`` (v1.3+): the head's GCS keeps its tables in an external Redis,
    so a new head Pod takes over the cluster (workers, detached actors) instead of starting a new one."""

    model_config = _STRICT
    redis_address: str = Field(alias="redisAddress", min_length=3, max_length=255, pattern=r"^[^\s]+:[0-9]{1,5}$",
                               description="host:port of the Redis, e.g. redis.redis.svc.cluster.local:6379")
    redis_password_secret: SecretKey | None = Field(
        None, alias="redisPasswordSecret", description="The Secret key holding the Redis password (never inline)")
    external_storage_namespace: str | None = Field(
        None, alias="externalStorageNamespace", max_length=253, pattern=r"^[-._a-zA-Z0-9]+$",
        description="Redis key namespace (KubeRay default: the RayCluster's UID, so a re-created cluster "
                    "starts empty)")

    def as_manifest(self) -> dict[str, Any]:
        """``spec.gcsFaultToleranceOptions`` as KubeRay's CRD spells it."""
        out: dict[str, Any] = {"redisAddress": self.redis_address}
        if self.redis_password_secret:
            out["redisPassword"] = {"valueFrom": {"secretKeyRef": {"name": self.redis_password_secret.name,
                                                                   "key": self.redis_password_secret.key}}}
        if self.external_storage_namespace:
            out["externalStorageNamespace"] = self.external_storage_namespace
        return out


class RayClusterConfig(BaseModel):
    """One Ray cluster in one environment."""

    model_config = _STRICT
    name: str = Field(description="RayCluster name: DNS-1035 label, at most 53 characters (KubeRay limit)",
                      min_length=1, max_length=53, pattern=DNS1035)
    namespace: str = Field(description="Namespace (must exist)", min_length=1, max_length=63, pattern=DNS1035)
    environment: Environment = Field(description="Where this cluster runs")
    ray_version: str = Field(alias="rayVersion", pattern=r"^\d+\.\d+\.\d+$",
                             description="Ray version in the image (spec.rayVersion), e.g. 2.60.0")
    image: str = Field(min_length=1, max_length=255, pattern=r"^[^\s]+$",
                       description="Container image of head and workers, e.g. rayproject/ray:2.60.0-py311")
    upgrade_strategy: UpgradeStrategy = Field(UpgradeStrategy.recreate, alias="upgradeStrategy",
                                              description="What KubeRay does with running pods on a spec change")
    autoscaling: Autoscaling = Field(default_factory=Autoscaling, description="In-tree autoscaling")
    gcs_fault_tolerance: GcsFaultTolerance | None = Field(
        None, alias="gcsFaultTolerance", description="Keep the GCS in an external Redis so a head failure loses "
                                                     "no worker or detached actor (kaiops cluster drill proves it)")
    labels: LabelMap = Field(default_factory=dict, description="Labels on the RayCluster")
    head: HeadGroup = Field(description="The head group")
    worker_groups: list[WorkerGroup] = Field(default_factory=list, alias="workerGroups", max_length=32,
                                             description="Worker groups (names unique)")

    @field_validator("image")
    @classmethod
    def _image(cls, value: str) -> str:
        from configs.inputs import image_problem

        problem = image_problem(value)
        if problem:
            raise ValueError(f"{problem} (fix: e.g. rayproject/ray:2.60.0-py311)")
        return value

    @model_validator(mode="after")
    def _checks(self) -> RayClusterConfig:
        names = [g.name for g in self.worker_groups]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"worker group names must be unique; repeated: {', '.join(dupes)}")
        tag = self.image.rsplit(":", 1)[-1] if ":" in self.image.rsplit("/", 1)[-1] else ""
        if tag and re.match(r"^\d+\.\d+\.\d+", tag) and not tag.startswith(self.ray_version):
            raise ValueError(f"image tag {tag!r} does not match rayVersion {self.ray_version}")
        return self


def json_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`RayClusterConfig` for editors (YAML keys as written, i.e. by alias)."""
    schema = RayClusterConfig.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://kaiops.dev/schemas/ray-cluster.schema.json"
    return schema


def write_json_schema(path: Path = SCHEMA_PATH) -> Path:
    """Write :func:`json_schema` to ``path`` (sorted keys, trailing newline); return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_schema(), indent=2, sort_keys=True) + "\n")
    return path


def _fix_for(error: dict[str, Any], model: type[BaseModel] | None) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        allowed = sorted((f.alias or n) for n, f in model.model_fields.items()) if model else []
        return "remove it" + (f"; allowed keys here: {', '.join(allowed)}" if allowed else "")
    if kind == "missing":
        return "add it (see configs/schemas/ray-cluster.schema.json)"
    if model is not None and error["loc"]:
        field = _field_of(model, str(error["loc"][-1]))
        if field is not None and field.description:
            return str(field.description)
    return "change the values the message names (schema: configs/schemas/ray-cluster.schema.json)"


def _field_of(model: type[BaseModel], key: str) -> FieldInfo | None:
    for name, field in model.model_fields.items():
        if key in (name, field.alias):
            return field
    return None


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that owns the last key of ``loc`` (for listing allowed keys in a fix)."""
    model: Any = RayClusterConfig
    for key in loc[:-1]:
        if isinstance(key, int):
            continue
        field = _field_of(model, str(key)) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return None
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        candidates = [annotation, *args]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return None
    found: type[BaseModel] | None = model
    return found


def load_cluster_config(path: str | Path) -> RayClusterConfig:
    """Read and validate one cluster file.

    Args:
        path: a YAML file (e.g. ``configs/clusters/sandbox.yaml``).

    Returns:
        The validated config.

    Raises:
        InputError: the file is missing, is not YAML, or a field is wrong (the first error, with its dotted
            field path and the fix; all errors are listed in the message).
    """
    return load_model(path, RayClusterConfig, example="configs/clusters/sandbox.yaml",
                      fix_for=lambda e: _fix_for(e, _model_at(tuple(e["loc"]))))
