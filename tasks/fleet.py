"""Per-namespace work that fleet flows fan out: one namespace (or cluster) per task, independent, so the
tasks run side by side on threads or on a Ray cluster.

:func:`namespace_inventory` is a read-only listing (what a backup of that namespace would export: the
platform's custom resources and the ConfigMaps/ServiceAccounts they use). Per-namespace failures are
reported in the row (``error``), not raised, so a fleet run finishes partially failed instead of stopping.
"""

from __future__ import annotations

from typing import Any

from prefect import task

#: The kinds the inventory counts: (apiVersion, kind).
INVENTORY_KINDS: tuple[tuple[str, str], ...] = (
    ("ray.io/v1", "RayCluster"),
    ("ray.io/v1", "RayJob"),
    ("ray.io/v1", "RayService"),
    ("serving.kserve.io/v1beta1", "InferenceService"),
    ("serving.kserve.io/v1alpha1", "ServingRuntime"),
    ("v1", "ConfigMap"),
    ("v1", "ServiceAccount"),
)


def inventory(namespace: str, kubeconfig: str | None = None) -> dict[str, Any]:
    """Count the objects of :data:`INVENTORY_KINDS` in ``namespace``.

    Returns:
        ``{"namespace", "counts": {kind: n}, "names": {kind: [names]}, "error": str | None, "host": str}``;
        ``host`` is the machine/process that ran it (``hostname:pid``), to show where fan-out ran.
    """
    import os
    import socket

    from tasks import kube

    row: dict[str, Any] = {"namespace": namespace, "counts": {}, "names": {}, "error": None,
                           "host": f"{socket.gethostname()}:{os.getpid()}"}
    try:
        dyn = kube.connect(kubeconfig)
        for api_version, kind in INVENTORY_KINDS:
            try:
                resource = kube.resource_for(dyn, api_version, kind)
            except kube.NotFound:
                continue
            items = resource.get(namespace=namespace).to_dict().get("items", [])
            names = sorted(i["metadata"]["name"] for i in items)
            if kind == "ConfigMap":
                names = [n for n in names if n != "kube-root-ca.crt"]
            row["counts"][kind] = len(names)
            row["names"][kind] = names
    except Exception as exc:  # reported per namespace: the fleet run goes on
        row["error"] = f"{exc.__class__.__name__}: {str(exc)[:300]}"
    return row


@task(name="namespace-inventory")
def namespace_inventory(namespace: str, kubeconfig: str | None = None) -> dict[str, Any]:
    """Prefect task around :func:`inventory` (no retries: it reports its own errors)."""
    return inventory(namespace, kubeconfig)
