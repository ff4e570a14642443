"""The bad-input corpus against the sandbox: every bad command line exits 2, and the cluster, the buckets and
Prefect are exactly as before (resourceVersions, object listings with ETags, deployments, flow runs, concurrency
limits, blocks). The headline case: a rollout with a malformed ``--storage-uri`` on a live InferenceService
takes no lease and leaves its resourceVersion unchanged."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.bad_input_corpus import REPO, URIS, Scratch, cases
from tests.cli_runner import run_cli
from tests.sandbox_env import exported

pytestmark = pytest.mark.integration

SERVICES = ("kube-apiserver", "s3", "gcs", "prefect")  # what the corpus could touch if a check were missing
ISVC = {
    "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
    "metadata": {"name": "iris", "namespace": "default"},
    "spec": {"predictor": {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "s3://models/iris/v1"}}},
}
KINDS = [("v1", "Namespace"), ("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "ServiceAccount"), ("v1", "Event"),
         ("coordination.k8s.io/v1", "Lease"), ("serving.kserve.io/v1beta1", "InferenceService"),
         ("serving.kserve.io/v1alpha1", "LocalModelCache"), ("ray.io/v1", "RayCluster"),
         ("gateway.networking.k8s.io/v1", "HTTPRoute")]


@pytest.fixture(scope="module")
def live() -> Iterator[dict[str, str]]:
    """Only the services the corpus could change (started unless healthy; stopped by the session's end)."""
    from sandbox import launcher

    launcher.up(SERVICES)
    with exported(launcher.env()) as env:
        yield env


@pytest.fixture(scope="module")
def world(live):
    """An InferenceService, an S3 and a GCS bucket with a model in them: things a missed check would change."""
    from tasks import kube
    from tasks.storage.gcs import GcsStore
    from tasks.storage.s3 import S3Store

    dyn = kube.connect()
    kube.apply(dyn, ISVC)
    s3, gcs = S3Store.from_env(), GcsStore.from_env()
    for store in (s3, gcs):
        with contextlib.suppress(Exception):  # already there from an earlier run of this sandbox
            store.create_bucket("models")
    # something at the URI the cases name, but never over a real model other tests serve from the same path
    # (a placeholder there made the emulated KServe's sklearn server fail later: "KeyError: 109")
    if not s3.client.list_objects_v2(Bucket="models", Prefix="iris/v1/").get("KeyCount"):
        s3.client.put_object(Bucket="models", Key="iris/v1/model.joblib", Body=b"model")
    blob = gcs.client.bucket("models").blob("iris/v1/model.joblib")
    if not blob.exists():
        blob.upload_from_string(b"model")
    return dyn, s3, gcs


def _by_kaiops(event: dict[str, Any]) -> bool:
    """An Event kaiops wrote (its rollout, provisioning and backup Events name a kaiops component)."""
    component = (event.get("source") or {}).get("component") or event.get("reportingComponent") or ""
    return "kaiops" in component


def _what_kaiops_could_change(obj: dict[str, Any]) -> Any:
    """The parts of an object a kaiops command writes: spec (via generation) and metadata, or the whole object
    when it has no generation (ConfigMap, Secret, ServiceAccount, Lease). A status written by the real
    controllers (KubeRay, the controller-manager, the KServe emulator) is not a change kaiops made."""
    meta = obj["metadata"]
    if "generation" in meta:
        return meta["generation"], meta.get("labels"), meta.get("annotations")
    return meta["resourceVersion"]


def snapshot(dyn, s3, gcs) -> dict[str, Any]:
    """Everything a command could have changed, comparable with ``==``."""
    from prefect.client.orchestration import get_client

    from tasks import kube

    cluster = {}
    terminating = {n["metadata"]["name"] for n in kube.resource_for(dyn, "v1", "Namespace").get().to_dict()["items"]
                   if n["metadata"].get("deletionTimestamp")}
    for api_version, kind in KINDS:
        try:
            items = kube.resource_for(dyn, api_version, kind).get().to_dict()["items"]
        except kube.NotFound:
            continue
        for obj in items:
            meta = obj["metadata"]
            if kind == "Lease" and meta.get("namespace") in ("kube-system", "kube-node-lease"):
                continue  # the apiserver's identity leases and the node's heartbeat renew themselves
            if meta.get("deletionTimestamp"):
                continue  # already going (a RayCluster an earlier module deleted waits for KubeRay's finalizer)
            if kind == "Event" and not _by_kaiops(obj):
                continue  # the kubelet, the scheduler and the operators write Events of their own all the time
            cluster[(kind, meta.get("namespace"), meta["name"])] = _what_kaiops_could_change(obj)
    buckets = {}
    for b in s3.client.list_buckets().get("Buckets", []):
        pages = s3.client.get_paginator("list_objects_v2").paginate(Bucket=b["Name"])
        buckets[f"s3://{b['Name']}"] = sorted((o["Key"], o["ETag"]) for p in pages for o in p.get("Contents") or [])
    for b in gcs.client.list_buckets():
        buckets[f"gs://{b.name}"] = sorted((o.name, o.etag) for o in gcs.client.list_blobs(b.name))
    with get_client(sync_client=True) as client:
        prefect = {
            "deployments": sorted((str(d.id), str(d.updated)) for d in client.read_deployments()),
            "flow_runs": sorted((str(r.id), r.state_type.value if r.state_type else "") for r in
                                client.read_flow_runs(limit=200)),
            "limits": sorted((g.name, g.limit, g.active) for g in client.read_global_concurrency_limits(limit=200)),
            "blocks": sorted(str(b.id) for b in client.read_block_documents()),
        }
    return {"cluster": cluster, "buckets": buckets, "prefect": prefect, "terminating": terminating}


def _diff(before: dict, after: dict) -> list[str]:
    """What changed between two snapshots. Namespaces already being deleted before (an earlier test deleted
    them; the real namespace controller is still emptying them) are left out: their objects go on their own."""
    going = before["terminating"]
    out = []
    for part in ("cluster", "buckets", "prefect"):
        b, a = before[part], after[part]
        for key in sorted(set(b) | set(a), key=str):
            if part == "cluster" and (key[1] in going or (key[0] == "Namespace" and key[2] in going)):
                continue
            if b.get(key) != a.get(key):
                out.append(f"{part}: {key}: {b.get(key)!r} -> {a.get(key)!r}")
    return out


def test_rollout_with_a_malformed_storage_uri_changes_nothing(world, monkeypatch):
    """Not a dry run: the malformed URI is refused before the lease, the first write or a flow run."""
    dyn, s3, gcs = world
    from tasks.rollout.isvc import get_isvc

    before, rv = snapshot(dyn, s3, gcs), get_isvc(dyn, "default", "iris")["metadata"]["resourceVersion"]
    for uri in ["s3://mo dels/iris/v2", "s3://models/iris/v\uff12", "models/iris/v2", "s3://models/../v2"]:
        result = run_cli(["rollout", "iris", "-n", "default", "--storage-uri", uri,
                          "--policy", str(REPO / "configs/canary/default.yaml"),
                          "--prometheus-url", "http://127.0.0.1:9"])
        assert result.code == 2, result.text
        assert "--storage-uri" in result.text
    isvc = get_isvc(dyn, "default", "iris")
    assert isvc["metadata"]["resourceVersion"] == rv
    assert not any(k.startswith("kaiops") for k in (isvc["metadata"].get("annotations") or {}))  # no lease
    assert _diff(before, snapshot(dyn, s3, gcs)) == []


def test_rollout_flow_refuses_a_malformed_storage_uri_at_its_boundary(world):
    """A run from the UI or a deployment: Prefect's parameter validation refuses it before the body runs."""
    from prefect.exceptions import ParameterTypeError

    from flows.rollout import canary_rollout
    from tasks.rollout.isvc import get_isvc

    dyn = world[0]
    rv = get_isvc(dyn, "default", "iris")["metadata"]["resourceVersion"]
    for uri in URIS[:6]:
        with pytest.raises(ParameterTypeError, match="storage_uri"):
            canary_rollout.validate_parameters({"isvc": "iris", "namespace": "default", "storage_uri": uri,
                                                "policy_file": str(REPO / "configs/canary/default.yaml")})
    assert get_isvc(dyn, "default", "iris")["metadata"]["resourceVersion"] == rv


def test_corpus_against_the_sandbox_changes_nothing(world, tmp_path: Path, monkeypatch, capsys):
    """Every corpus command line, with the sandbox's environment: exit 2 each, and nothing changed anywhere."""
    dyn, s3, gcs = world
    monkeypatch.setenv("KAIOPS_REGISTRY_WEBHOOK_SECRET", f"corpus-{uuid.uuid4().hex}")
    scratch = Scratch(tmp_path)
    all_cases = list(cases(scratch))
    before = snapshot(dyn, s3, gcs)
    wrong = []
    for case in all_cases:
        result = run_cli(case.argv)
        if result.code != 2:
            wrong.append(f"{case.id}: exit {result.code}: {result.text.strip()[-300:]}")
    changed = _diff(before, snapshot(dyn, s3, gcs))
    with capsys.disabled():
        print(f"\nbad-input corpus (CLI, live sandbox): {len(all_cases)} cases over "
              f"{len({c.entry for c in all_cases})} commands; {len(wrong)} not refused; {len(changed)} changes")
    assert not wrong, "\n".join(wrong)
    assert changed == [], "\n".join(changed)
