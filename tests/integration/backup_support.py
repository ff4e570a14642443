"""Test helpers (not tests) for tests/integration/test_backup.py and tests/e2e/test_drill.py.

Sample KubeRay/KServe/Gateway objects for backup tests, and a stand-in controller that writes status."""

from __future__ import annotations

import threading
from typing import Any

from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from tasks import kube


def namespace(name: str, labels: dict[str, str] | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels or {}}}


def platform_objects(ns: str, *, with_secret: bool = True) -> list[dict[str, Any]]:
    """A small platform in ``ns``: Secret <- ServiceAccount <- InferenceService (ConfigMap volume),
    a RayCluster reading a ConfigMap by envFrom, a ServingRuntime, an HTTPRoute, and noise that must
    not be backed up (an unreferenced ConfigMap, a RayCluster owned by a RayJob)."""
    objs: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "model-config", "namespace": ns},
            "data": {"threshold": "0.5"},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "ray-env", "namespace": ns},
            "data": {"RAY_LOG": "info"},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "unreferenced", "namespace": ns},
            "data": {"x": "y"},
        },
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "model-sa", "namespace": ns},
            **({"secrets": [{"name": "s3-creds"}]} if with_secret else {}),
        },
        {
            "apiVersion": "serving.kserve.io/v1alpha1",
            "kind": "ServingRuntime",
            "metadata": {"name": "sklearn-rt", "namespace": ns},
            "spec": {
                "supportedModelFormats": [{"name": "sklearn", "autoSelect": True}],
                "containers": [{"name": "kserve-container", "image": "kserve/sklearnserver:v0.15.0"}],
            },
        },
        {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": {"name": "iris", "namespace": ns, "labels": {"team": "ml"}},
            "spec": {
                "predictor": {
                    "serviceAccountName": "model-sa",
                    "model": {"modelFormat": {"name": "sklearn"}, "storageUri": "s3://models/iris/1"},
                    "volumes": [{"name": "cfg", "configMap": {"name": "model-config"}}],
                }
            },
        },
        {
            "apiVersion": "ray.io/v1",
            "kind": "RayCluster",
            "metadata": {"name": "train", "namespace": ns},
            "spec": {
                "rayVersion": "2.46.0",
                "headGroupSpec": {
                    "rayStartParams": {"num-cpus": "1"},
                    "template": {
                        "spec": {
                            "containers": [
                                {
                                    "name": "ray-head",
                                    "image": "rayproject/ray:2.46.0",
                                    "envFrom": [{"configMapRef": {"name": "ray-env"}}],
                                }
                            ]
                        }
                    },
                },
            },
        },
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "iris", "namespace": ns},
            "spec": {"rules": [{"backendRefs": [{"name": "iris-predictor", "port": 80, "weight": 100}]}]},
        },
    ]
    if with_secret:
        objs.insert(
            0,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "s3-creds", "namespace": ns},
                "type": "Opaque",
                "stringData": {"AWS_SECRET_ACCESS_KEY": "plain-text-canary-7f3a"},
            },
        )
    return objs


def owned_ray_cluster(ns: str) -> dict[str, Any]:
    """A RayCluster made by a RayJob (ownerReference): a backup leaves it out."""
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {
            "name": "job-cluster",
            "namespace": ns,
            "ownerReferences": [
                {
                    "apiVersion": "ray.io/v1",
                    "kind": "RayJob",
                    "name": "job",
                    "uid": "0b7f3c1e-2c58-4c9f-9d51-1f0a5d1c2b3a",
                }
            ],
        },
        "spec": {
            "headGroupSpec": {
                "rayStartParams": {},
                "template": {"spec": {"containers": [{"name": "ray-head", "image": "rayproject/ray:2.46.0"}]}},
            }
        },
    }


READY_STATUS = {
    "RayCluster": {
        "state": "ready",
        "conditions": [
            {
                "type": "HeadPodReady",
                "status": "True",
                "reason": "HeadPodRunningAndReady",
                "lastTransitionTime": "2025-01-01T00:00:00Z",
                "message": "",
            }
        ],
    },
    "InferenceService": {
        "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z"}]
    },
}


class FakeController:
    """Plays the KubeRay/KServe controllers for drills: watches RayClusters and InferenceServices in
    namespaces starting with ``prefix`` and writes a ready status through the status subresource.

    Swap it for the sandbox emulators (``kaiops sandbox up``) when they run; the drill does not care.
    """

    def __init__(self, dyn: DynamicClient, prefix: str = "d-") -> None:
        self.dyn, self.prefix = dyn, prefix
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._run, args=(kind, av), daemon=True)
            for kind, av in (("RayCluster", "ray.io/v1"), ("InferenceService", "serving.kserve.io/v1beta1"))
        ]

    def __enter__(self) -> FakeController:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=10)

    def _run(self, kind: str, api_version: str) -> None:
        resource = kube.resource_for(self.dyn, api_version, kind)
        status = resource.subresources["status"]
        while not self.stop.is_set():
            for event in self.dyn.watch(resource, timeout=2):
                obj = event["raw_object"]
                meta = obj["metadata"]
                if self.stop.is_set():
                    break
                if event["type"] != "ADDED" or not meta.get("namespace", "").startswith(self.prefix):
                    continue
                body = {"status": READY_STATUS[kind]}
                try:
                    self.dyn.patch(
                        status,
                        body=body,
                        name=meta["name"],
                        namespace=meta["namespace"],
                        content_type="application/merge-patch+json",
                    )
                except ApiException as exc:  # deleted meanwhile (an earlier drill's cleanup, or a sweep)
                    if exc.status != 404:
                        raise
                if self.stop.is_set():
                    break
