"""Where the Ray cluster spec sits in each KubeRay kind, and its head/worker groups.

RayCluster: ``spec``; RayJob: ``spec.rayClusterSpec``; RayService: ``spec.rayClusterConfig``
(ray-operator/apis/ray/v1 rayjob_types.go, rayservice_types.go). The Ray container is ``containers[0]``
(``utils.RayContainerIndex``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tasks.manifests.paths import child, get, mapping, sequence
from tasks.manifests.rules.base import RAYCLUSTER, RAYJOB, RAYSERVICE, Manifest

_CLUSTER_SPEC_FIELD = {RAYCLUSTER: None, RAYJOB: "rayClusterSpec", RAYSERVICE: "rayClusterConfig"}


@dataclass(frozen=True)
class RayGroup:
    """A head or worker group of one Ray cluster spec.

    Attributes:
        path: field path of the group (``spec.workerGroupSpecs[0]``).
        spec: the group mapping.
        is_head: True for ``headGroupSpec``.
    """

    path: str
    spec: dict[str, Any]
    is_head: bool

    @property
    def start_params(self) -> dict[str, Any]:
        """``rayStartParams`` (empty when absent)."""
        return mapping(self.spec.get("rayStartParams"))

    @property
    def start_params_path(self) -> str:
        """Field path of ``rayStartParams``."""
        return child(self.path, "rayStartParams")

    @property
    def ray_container(self) -> dict[str, Any]:
        """The Ray container (``template.spec.containers[0]``), empty when absent."""
        return mapping(get(self.spec, "template", "spec", "containers", 0))

    @property
    def ray_container_path(self) -> str:
        """Field path of the Ray container."""
        return f"{self.path}.template.spec.containers[0]"

    @property
    def role(self) -> str:
        """``head`` or the worker group name."""
        return "head" if self.is_head else f"worker group {self.spec.get('groupName', '?')!r}"


def cluster_spec(manifest: Manifest) -> tuple[str, dict[str, Any]] | None:
    """Return ``(path, RayClusterSpec)`` for a RayCluster/RayJob/RayService, or None when it has none."""
    key = (manifest.group, manifest.kind)
    if key not in _CLUSTER_SPEC_FIELD:
        return None
    field = _CLUSTER_SPEC_FIELD[key]
    if field is None:
        return "spec", manifest.spec
    spec = manifest.spec.get(field)
    return (f"spec.{field}", spec) if isinstance(spec, dict) else None


def groups(manifest: Manifest) -> Iterator[RayGroup]:
    """Yield the head group, then each worker group, of the manifest's Ray cluster spec."""
    found = cluster_spec(manifest)
    if found is None:
        return
    path, spec = found
    head = spec.get("headGroupSpec")
    if isinstance(head, dict):
        yield RayGroup(child(path, "headGroupSpec"), head, True)
    for i, worker in enumerate(sequence(spec.get("workerGroupSpecs"))):
        if isinstance(worker, dict):
            yield RayGroup(f"{path}.workerGroupSpecs[{i}]", worker, False)


def head_group(manifest: Manifest) -> RayGroup | None:
    """Return the head group, or None."""
    return next((g for g in groups(manifest) if g.is_head), None)
