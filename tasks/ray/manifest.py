"""Render a :class:`~configs.ray_cluster.RayClusterConfig` to a KubeRay ``RayCluster`` manifest (pure).

The output is what kaiops applies: only the fields kaiops owns (server-side apply keeps other managers' fields,
e.g. the autoscaler's ``replicas``, when autoscaling is on). Head ports are KubeRay's defaults written out
(ray-operator/controllers/ray/utils/constant.go: gcs-server 6379, dashboard 8265, client 10001, serve 8000;
the operator adds metrics 8080), so the head Service and ``status.endpoints`` carry all of them.
"""

from __future__ import annotations

from typing import Any

from configs.ray_cluster import RayClusterConfig, Resources, WorkerGroup

API_VERSION = "ray.io/v1"
KIND = "RayCluster"
MANAGED_BY = {"app.kubernetes.io/managed-by": "kaiops"}
HEAD_PORTS = (("gcs-server", 6379), ("dashboard", 8265), ("client", 10001), ("serve", 8000))


def _resources(res: Resources) -> dict[str, Any]:
    limits: dict[str, Any] = {"cpu": res.cpu, "memory": res.memory}
    if res.gpu:
        limits["nvidia.com/gpu"] = str(res.gpu)
    return {"requests": dict(limits), "limits": limits}


def _container(name: str, image: str, res: Resources, ports: bool) -> dict[str, Any]:
    container: dict[str, Any] = {"name": name, "image": image, "resources": _resources(res)}
    if ports:
        container["ports"] = [{"name": n, "containerPort": p} for n, p in HEAD_PORTS]
    return container


def _template(labels: dict[str, str], container: dict[str, Any]) -> dict[str, Any]:
    template: dict[str, Any] = {"spec": {"containers": [container]}}
    if labels:
        template["metadata"] = {"labels": dict(labels)}
    return template


def _worker(cfg: RayClusterConfig, group: WorkerGroup) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "groupName": group.name,
        "replicas": group.replicas,
        "minReplicas": group.min_replicas,
        "maxReplicas": group.max_replicas,
        "rayStartParams": group.ray_start_params.as_params(),
        "template": _template(group.labels, _container("ray-worker", cfg.image, group.resources, ports=False)),
    }
    pod = spec["template"]["spec"]
    if group.node_selector:
        pod["nodeSelector"] = dict(group.node_selector)
    if group.tolerations:
        pod["tolerations"] = [t.as_manifest() for t in group.tolerations]
    if group.suspend:
        spec["suspend"] = True
    return spec


def render_ray_cluster(cfg: RayClusterConfig, *, suspend: bool | None = None) -> dict[str, Any]:
    """Return the RayCluster manifest for ``cfg``.

    Args:
        cfg: the validated cluster config.
        suspend: write ``spec.suspend`` (True/False); None leaves the field out (not owned by kaiops).

    Returns:
        A dict ready for ``tasks.kube.apply``; it passes ``tasks.manifests.validate_documents`` clean.
    """
    spec: dict[str, Any] = {
        "rayVersion": cfg.ray_version,
        "enableInTreeAutoscaling": cfg.autoscaling.enabled,
        "upgradeStrategy": {"type": cfg.upgrade_strategy.value},
        "headGroupSpec": {
            "serviceType": cfg.head.service_type,
            "rayStartParams": cfg.head.ray_start_params.as_params(),
            "template": _template(cfg.head.labels, _container("ray-head", cfg.image, cfg.head.resources, ports=True)),
        },
        "workerGroupSpecs": [_worker(cfg, g) for g in cfg.worker_groups],
    }
    if cfg.autoscaling.enabled:
        spec["autoscalerOptions"] = {
            "idleTimeoutSeconds": cfg.autoscaling.idle_timeout_seconds,
            "upscalingMode": cfg.autoscaling.upscaling_mode,
        }
    if cfg.gcs_fault_tolerance is not None:
        spec["gcsFaultToleranceOptions"] = cfg.gcs_fault_tolerance.as_manifest()
    if suspend is not None:
        spec["suspend"] = suspend
    labels = {**cfg.labels, **MANAGED_BY, "kaiops.dev/environment": cfg.environment.value}
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": cfg.name, "namespace": cfg.namespace, "labels": labels},
        "spec": spec,
    }


def namespace_manifest(name: str) -> dict[str, Any]:
    """The Namespace a cluster lives in (applied first so provisioning works on an empty cluster)."""
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": dict(MANAGED_BY)}}
