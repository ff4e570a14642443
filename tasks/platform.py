"""A health report of the platform kaiops acts on: Kubernetes API, CRDs, object stores, Ray, Prometheus.

Used by the demo and by ``kaiops doctor``-style checks; every probe is read-only.
"""

from __future__ import annotations

from typing import Any

import boto3
import httpx
from kubernetes import client as k8s
from prefect import task

from tasks import kube
from tasks.crds import load_crds
from tasks.ray import jobs as ray_jobs


@task(name="check-kubernetes")
def check_kubernetes(kubeconfig: str | None = None) -> dict[str, Any]:
    """Return ``{"server_version": "v1.35.4", "crds_established": 17, "crds_expected": 17}``."""
    dyn = kube.connect(kubeconfig)
    version = k8s.VersionApi(dyn.client).get_code().git_version
    crds = kube.list_objects(dyn, "apiextensions.k8s.io/v1", "CustomResourceDefinition")
    established = sum(1 for c in crds if kube.condition_true(c, "Established"))
    return {"server_version": version, "crds_established": established, "crds_expected": len(load_crds())}


@task(name="check-s3")
def check_s3(endpoint_url: str | None = None) -> dict[str, Any]:
    """Return ``{"endpoint": ..., "buckets": N}`` from a ListBuckets call (credentials from the environment)."""
    s3 = boto3.client("s3", endpoint_url=endpoint_url)
    return {"endpoint": endpoint_url or "aws", "buckets": len(s3.list_buckets().get("Buckets", []))}


@task(name="check-prometheus")
def check_prometheus(url: str) -> dict[str, Any]:
    """Return ``{"url": ..., "targets_up": N}``: how many scrape targets answer right now."""
    resp = httpx.get(f"{url}/api/v1/query", params={"query": "sum(up)"}, timeout=10)
    resp.raise_for_status()
    result = resp.json()["data"]["result"]
    return {"url": url, "targets_up": int(float(result[0]["value"][1])) if result else 0}


@task(name="ray-smoke-job", retries=1, retry_delay_seconds=5)
def check_ray(address: str) -> dict[str, Any]:
    """Run the smoke job through the Job Submission API; return its id, status and seconds."""
    result = ray_jobs.smoke_test(address, timeout=300)
    return {"address": address, "job_id": result.job_id, "status": result.status, "seconds": result.seconds}
