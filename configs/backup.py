"""Backup policies: what to back up, where to, how long to keep it, and how drills run.

``configs/backups/<name>.yaml`` is typed by :class:`BackupPolicy` (unknown keys refused, every field
described and bounded). :func:`load_policy` turns every validation error into an
:class:`~tasks.errors.InputError` naming the file, the field path and the fix.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from configs.loading import load_model

POLICY_DIR = Path(__file__).parent / "backups"
DEFAULT_POLICY = POLICY_DIR / "nightly.yaml"
KIND_NAMES = (
    "RayCluster", "RayJob", "RayService", "InferenceService", "ServingRuntime", "ClusterServingRuntime",
    "InferenceGraph", "TrainedModel", "LocalModelCache", "HTTPRoute",
)
_DNS1123 = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_ENV = r"^[A-Za-z_][A-Za-z0-9_]*$"


class Layout(StrEnum):
    """How a backup's objects are stored at the destination (see ``tasks/backup/store.py``)."""

    packs = "packs"  # objects concatenated into shared, content-addressed packs: few PUTs, incremental nightlies
    objects = "objects"  # one storage object per resource under <id>/objects/...: browsable, each fetchable alone


class Retention(BaseModel):
    """How many complete backups to keep (see ``tasks/backup/retention.py``)."""

    model_config = ConfigDict(extra="forbid")

    daily: int = Field(7, ge=1, le=366, description="Keep the newest backup of each of the last N days (>= 1)")
    weekly: int = Field(4, ge=0, le=104, description="Keep the newest backup of each of the last M ISO weeks")
    monthly: int = Field(6, ge=0, le=120, description="Keep the newest backup of each of the last K months")
    incomplete_after_hours: float = Field(
        24.0, ge=1.0, le=24 * 30, description="Hours after which a backup without manifest is deleted"
    )


class ProductionMarkerConfig(BaseModel):
    """The label or annotation that marks a namespace as production (restore refuses it without --yes)."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field("kaiops.io/environment", min_length=1, max_length=253, description="Label/annotation key")
    value: str = Field("production", min_length=1, max_length=63, description="Value that means production")


class DrillConfig(BaseModel):
    """How restore drills run."""

    model_config = ConfigDict(extra="forbid")

    readiness_timeout_seconds: float = Field(
        300.0, ge=1, le=3600, description="Seconds to wait for restored objects to become ready"
    )
    max_rto_seconds: float | None = Field(
        None, ge=1, le=86400, description="Fail the drill when the measured RTO exceeds this (seconds)"
    )
    lease_seconds: float = Field(
        300.0, ge=3, le=3600,
        description="Lease on a drill's scratch namespaces, renewed every third of it while the drill runs; "
        "once expired, the next drill or retention run deletes them (seconds)",
    )


class BackupPolicy(BaseModel):
    """One backup policy (one nightly schedule)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=63, pattern=_DNS1123, description="Policy name (DNS label)")
    destination: str = Field(
        ..., min_length=6, max_length=1024,
        description="s3://bucket/prefix, gs://bucket/prefix or file:///dir; backups go to <destination>/<id>/",
    )
    create_bucket: bool = Field(False, description="Create the bucket when missing (sandbox convenience)")
    namespaces: list[str] = Field(
        default_factory=list, max_length=1000, description="Namespaces to back up; empty means all"
    )
    label_selector: str | None = Field(
        None, max_length=1024, description="Kubernetes label selector for the custom kinds (referenced objects "
        "are included whatever their labels)"
    )
    kinds: list[str] = Field(
        default_factory=lambda: list(KIND_NAMES), min_length=1, max_length=len(KIND_NAMES),
        description="Custom kinds to back up (ConfigMaps/ServiceAccounts/Secrets they reference come along)",
    )
    include_cluster_resources: bool | None = Field(
        None, description="Back up cluster-scoped kinds (ClusterServingRuntime, LocalModelCache, ...). Unset: only "
        "when `namespaces` is empty (all namespaces), as Velero does by default",
    )
    keep_status: bool = Field(False, description="Keep .status in the backup (restore never applies it)")
    encryption_key_env: str | None = Field(
        "KAIOPS_BACKUP_KEY", max_length=128, pattern=_ENV,
        description="Environment variable holding the urlsafe-base64 32-byte key; Secrets are backed up "
        "(encrypted) only when a key is found",
    )
    encryption_key_block: str | None = Field(
        None, max_length=128, description="Prefect Secret block holding the key (used when the env var is unset)"
    )
    retention: Retention = Field(default_factory=Retention, description="What retention keeps")
    production: ProductionMarkerConfig = Field(
        default_factory=ProductionMarkerConfig, description="How production namespaces are marked"
    )
    drill: DrillConfig = Field(default_factory=DrillConfig, description="Restore drill settings")
    metrics_dir: str | None = Field(
        None, max_length=1024, description="Directory for the Prometheus text files (default $KAIOPS_METRICS_DIR "
        "or the kaiops cache)"
    )
    incremental: bool = Field(
        True, description="Upload only objects that changed since the newest complete backup at the destination "
        "(unchanged ones point at the packs that already hold them); false: every backup uploads everything. "
        "Applies to layout packs only"
    )
    layout: Layout = Field(
        Layout.packs, description="packs: objects packed into shared content-addressed packs (fast, few requests, "
        "incremental); objects: one storage object per resource under <id>/objects/<group>/<Kind>/<namespace>/"
        "<name>.json, fetchable alone (every backup uploads everything: `incremental` is ignored)",
    )
    parallelism: int = Field(16, ge=1, le=128, description="Concurrent list/upload/apply requests")
    page_size: int = Field(500, ge=10, le=5000, description="Objects per Kubernetes list request (limit)")

    @field_validator("namespaces")
    @classmethod
    def _namespaces(cls, value: list[str]) -> list[str]:
        for ns in value:
            if not re.match(_DNS1123, ns) or len(ns) > 63:
                raise ValueError(f"{ns!r} is not a namespace name (lowercase DNS label, at most 63 characters)")
        return value

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, value: list[str]) -> list[str]:
        unknown = [k for k in value if k not in KIND_NAMES]
        if unknown:
            raise ValueError(f"unknown kind(s) {', '.join(unknown)}; known: {', '.join(KIND_NAMES)}")
        return value

    @field_validator("destination")
    @classmethod
    def _destination(cls, value: str) -> str:
        if not re.match(r"^(s3://[^/]+|gs://[^/]+|file:///)", value):
            raise ValueError("must start with s3://bucket, gs://bucket or file:///")
        return value


def load_policy(path: str | Path = DEFAULT_POLICY) -> BackupPolicy:
    """Read and validate one policy file.

    Raises:
        InputError: missing file, not YAML, or a wrong field (dotted path and the fix in the message).
    """
    return load_model(path, BackupPolicy, example='configs/backups/nightly.yaml')
