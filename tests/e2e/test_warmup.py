"""Warmup on the sandbox: credentials read from the apiserver, KServe's download, manifest verification,
wiring mistakes diagnosed before any download, and a LocalModelCache reaching NodeDownloaded."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import yaml

from tasks import kube
from tasks.kserve.credentials import ProblemKind
from tasks.kserve.manifests import (
    LOCALMODEL_JOB_NAMESPACE,
    inference_service_manifest,
    s3_wiring_manifests,
)
from tasks.storage import publish

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def world(sandbox, dyn, tmp_path_factory):
    """A bucket with iris v1 published, a namespace with SA+Secret, the same wiring in the localmodel job ns."""
    from tasks.demo.models import train_iris_models
    from tasks.storage.s3 import S3Store

    tag = uuid.uuid4().hex[:6]
    ns, bucket = f"wu-{tag}", f"wu-{tag}"
    store = S3Store.from_env()
    store.create_bucket(bucket)
    models = train_iris_models(tmp_path_factory.mktemp("iris"))
    publish(models[0].path, f"s3://{bucket}/iris/v1", store, model_format="sklearn")
    for namespace in (ns, LOCALMODEL_JOB_NAMESPACE):
        kube.apply(dyn, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        for doc in s3_wiring_manifests(namespace, "iris-sa", "s3creds", endpoint_url=sandbox["AWS_ENDPOINT_URL"],
                                       access_key_id=sandbox["AWS_ACCESS_KEY_ID"],
                                       secret_access_key=sandbox["AWS_SECRET_ACCESS_KEY"]):
            kube.apply(dyn, doc)
    return {"ns": ns, "bucket": bucket, "store": store, "dir": tmp_path_factory.mktemp("wu")}


def isvc_file(world, name: str, uri: str, sa: str = "iris-sa") -> str:
    path = Path(world["dir"]) / f"{name}.yaml"
    path.write_text(yaml.safe_dump(inference_service_manifest(name, world["ns"], uri, sa)))
    return str(path)


def test_warmup_downloads_verifies_and_fills_local_model_cache(world, sandbox) -> None:
    from flows.warmup import warmup_model
    from sandbox import launcher

    state = launcher.up(names=("localmodel",))
    uri = f"s3://{world['bucket']}/iris/v1/"
    # a dry run checks the wiring and says what it would do: nothing downloaded, no LocalModelCache
    cached = state.dir / "localmodel"
    before = sorted(cached.iterdir()) if cached.is_dir() else []
    preview = warmup_model(isvc_file(world, "iris", uri), cache_dir=str(Path(world["dir"]) / "cache-dry"),
                           local_model_cache=True, dry_run=True)
    assert preview["ok"] and preview["dry_run"] and len(preview["would"]) == 2, preview
    assert not (Path(world["dir"]) / "cache-dry").exists()
    assert (sorted(cached.iterdir()) if cached.is_dir() else []) == before
    summary = warmup_model(isvc_file(world, "iris", uri), cache_dir=str(Path(world["dir"]) / "cache"),
                           local_model_cache=True, timeout=180)
    assert summary["verdict"] == "ready", summary
    assert summary["files"] == 2 and summary["bytes"] > 0  # model.joblib + manifest.json
    lmc = summary["local_model_cache"]
    assert lmc["ok"] and lmc["nodeStatus"] == {"sandbox-node": "NodeDownloaded"}
    assert lmc["copies"] == {"total": 1, "available": 1, "failed": 0}
    copy = state.dir / "localmodel" / lmc["name"] / "model.joblib"
    assert copy.is_file()


def test_tampered_object_is_caught(world) -> None:
    from flows.warmup import warmup_model

    store, bucket = world["store"], world["bucket"]
    from tasks.demo.models import train_iris_models

    models = train_iris_models(Path(world["dir"]) / "t")
    publish(models[1].path, f"s3://{bucket}/iris/v9", store, model_format="sklearn")
    key = "iris/v9/model.joblib"
    body = bytearray(store.get_bytes(bucket, key))
    body[-1] ^= 0xFF  # same size, different content
    store.client.put_object(Bucket=bucket, Key=key, Body=bytes(body))
    summary = warmup_model(isvc_file(world, "tampered", f"s3://{bucket}/iris/v9/"),
                           cache_dir=str(Path(world["dir"]) / "cache-t"))
    assert summary["verdict"] == "corrupt" and not summary["ok"]
    assert [f["path"] for f in summary["failed_files"]] == ["model.joblib"]
    assert "model.joblib (sha256_mismatch)" in summary["error"]


def test_missing_service_account_diagnosed_from_apiserver(world) -> None:
    from tasks.storage.tasks import resolve_storage_credentials

    _, creds = resolve_storage_credentials.fn(isvc_file(world, "nosa", f"s3://{world['bucket']}/iris/v1/",
                                                        sa="nobody"), None)
    (p,) = [p for p in creds.problems if p.kind is ProblemKind.SERVICE_ACCOUNT_MISSING]
    assert f"{world['ns']}/nobody" in p.obj and "create ServiceAccount nobody" in p.fix
    # the Secret exists in the namespace but the missing SA cannot reference it
    assert any(p.kind is ProblemKind.SECRET_NOT_REFERENCED and "s3creds" in p.obj for p in creds.problems)


def test_unreferenced_secret_and_missing_bucket_diagnosed(world, dyn) -> None:
    from tasks.storage.tasks import check_bucket_task, resolve_storage_credentials

    kube.apply(dyn, {"apiVersion": "v1", "kind": "ServiceAccount",
                     "metadata": {"name": "bare-sa", "namespace": world["ns"]}})
    _, creds = resolve_storage_credentials.fn(isvc_file(world, "bare", f"s3://{world['bucket']}/iris/v1/",
                                                        sa="bare-sa"), None)
    p = next(p for p in creds.problems if p.kind is ProblemKind.SECRET_NOT_REFERENCED)
    assert "add {name: s3creds}" in p.fix and "bare-sa" in p.fix
    _, good = resolve_storage_credentials.fn(isvc_file(world, "nobucket", "s3://no-such-bucket-x/iris/v1/"), None)
    assert good.ok
    problem = check_bucket_task.fn(good)
    assert problem is not None and problem.kind is ProblemKind.BUCKET_MISSING
