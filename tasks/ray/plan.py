"""What applying a RayCluster would change, and what kaiops must not take from other field managers (pure).

:func:`keep_autoscaler_state` keeps the Ray autoscaler's decisions; :func:`same_object` / :func:`spec_diff`
compare the server-side dry run with the live object. No I/O here: the tasks in :mod:`tasks.ray.provision`
read and write.
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import yaml

from tasks import kube

SUSPEND_MANAGER = "kaiops-suspend"  # owns only spec.suspend, so a provision run never resumes a cluster


class Decision(StrEnum):
    """What a provisioning step did to the RayCluster."""

    created = "created"  # the object did not exist and was applied
    updated = "updated"  # the server-side dry run differed from the live object; applied
    unchanged = "unchanged"  # the dry run equals the live object; nothing written
    planned = "planned"  # dry run only: the diff was shown, nothing written
    deleted = "deleted"  # the RayCluster was deleted
    absent = "absent"  # nothing to delete: it was already gone


@dataclass(frozen=True)
class Plan:
    """The result of a server-side dry run against the live object.

    Attributes:
        decision: ``created``/``updated``/``unchanged`` (what applying would do).
        diff: unified diff of ``metadata.labels`` + ``spec`` (live -> after apply), empty when unchanged.
        live_resource_version: resourceVersion of the live object ("" when absent).
    """

    decision: Decision
    diff: str
    live_resource_version: str = ""


AUTOSCALED_LIST = "workerGroupSpecs"


def _spec_owners(live: dict[str, Any], mine: tuple[str, ...]) -> dict[str, set[str]]:
    """Field managers other than ``mine`` and the operator's status writer, with the top-level ``spec`` keys
    each owns (from ``metadata.managedFields``)."""
    owners: dict[str, set[str]] = {}
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        manager = entry.get("manager") or ""
        spec = ((entry.get("fieldsV1") or entry.get("fields_v1") or {}).get("f:spec")) or {}
        keys = {k[2:] for k in spec if k.startswith("f:")}
        if manager not in mine and keys:
            owners.setdefault(manager, set()).update(keys)
    return owners


def keep_autoscaler_state(manifest: dict[str, Any], live: dict[str, Any] | None,
                          mine: tuple[str, ...] = (kube.FIELD_MANAGER, SUSPEND_MANAGER)) -> tuple[dict[str, Any], bool]:
    """What kaiops applies to an autoscaling cluster, and whether it must take ``spec.workerGroupSpecs`` back.

    KubeRay v1.6.2's CRD leaves ``workerGroupSpecs`` without ``x-kubernetes-list-type``, so server-side apply
    treats the whole list as one atomic field; the Ray autoscaler (``ray kuberay-autoscaler``, a JSON patch of
    ``/spec/workerGroupSpecs/<i>/replicas`` and ``.../scaleStrategy/workersToDelete``, field manager
    ``python-requests``) then owns all of it, and the next apply by kaiops is a conflict on
    ``.spec.workerGroupSpecs``. So, when ``spec.enableInTreeAutoscaling`` is on and the cluster exists, each
    group keeps the live ``replicas`` and ``scaleStrategy`` (the autoscaler's decisions), and the list is
    taken back (``force``) only when nobody but kaiops owns any other ``spec`` field.

    Args:
        manifest: the rendered RayCluster (not changed; a copy is returned).
        live: the RayCluster as read (with ``managedFields``), or None when it does not exist.
        mine: kaiops's own field managers.

    Returns:
        ``(manifest to apply, force)``; force is True only when another manager owns ``workerGroupSpecs`` and
        nothing else of ``spec``.
    """
    if not live or not (manifest.get("spec") or {}).get("enableInTreeAutoscaling"):
        return manifest, False
    out = copy.deepcopy(manifest)
    live_groups = {g.get("groupName"): g for g in (live.get("spec") or {}).get(AUTOSCALED_LIST) or []}
    for group in out["spec"].get(AUTOSCALED_LIST) or []:
        current = live_groups.get(group["groupName"])
        if current is None:
            continue
        if "replicas" in current:
            group["replicas"] = current["replicas"]
        if current.get("scaleStrategy"):
            group["scaleStrategy"] = copy.deepcopy(current["scaleStrategy"])
    owners = _spec_owners(live, mine)
    force = bool(owners) and all(keys == {AUTOSCALED_LIST} for keys in owners.values())
    return out, force


def _comparable(obj: dict[str, Any] | None) -> dict[str, Any]:
    if not obj:
        return {}
    meta = obj.get("metadata") or {}
    return {"metadata": {"labels": meta.get("labels") or {}, "annotations": meta.get("annotations") or {}},
            "spec": obj.get("spec") or {}}


def same_object(live: dict[str, Any] | None, planned: dict[str, Any]) -> bool:
    """True when applying would change neither labels, annotations nor spec of ``live``."""
    return live is not None and _comparable(live) == _comparable(planned)


def spec_diff(live: dict[str, Any] | None, planned: dict[str, Any], name: str = "RayCluster") -> str:
    """Unified diff (YAML) of labels/annotations/spec from ``live`` (None: absent) to ``planned``."""
    before = yaml.safe_dump(_comparable(live), sort_keys=True).splitlines(keepends=True) if live else []
    after = yaml.safe_dump(_comparable(planned), sort_keys=True).splitlines(keepends=True)
    return "".join(difflib.unified_diff(before, after, f"live/{name}", f"planned/{name}"))
