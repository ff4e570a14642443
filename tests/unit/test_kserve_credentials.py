"""Credential resolution as KServe v0.20 does it, and each wiring mistake diagnosed with its fix."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tasks.kserve.credentials import CredentialConfig, CredentialSource, ProblemKind, StorageKind
from tasks.kserve.resolve import resolve

pytestmark = pytest.mark.unit

KEY_ID, SECRET = "AKIDTESTVALUE123", "s3cr3t-value-never-printed"


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def isvc(uri: str = "s3://models/iris/v1/", sa: str | None = "iris-sa", annotations: dict | None = None) -> dict:
    predictor: dict = {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": uri}}
    if sa:
        predictor["serviceAccountName"] = sa
    return {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService",
            "metadata": {"name": "iris", "namespace": "demo", "annotations": annotations or {}},
            "spec": {"predictor": predictor}}


def s3_secret(name: str = "s3creds", annotations: dict | None = None, data: dict | None = None) -> dict:
    ann = {"serving.kserve.io/s3-endpoint": "127.0.0.1:9000", "serving.kserve.io/s3-usehttps": "0"}
    if annotations is not None:
        ann = annotations
    return {"kind": "Secret", "metadata": {"name": name, "namespace": "demo", "annotations": ann},
            "data": data if data is not None else {"AWS_ACCESS_KEY_ID": b64(KEY_ID),
                                                   "AWS_SECRET_ACCESS_KEY": b64(SECRET)}}


def sa(name: str = "iris-sa", secrets: list[str] | None = None) -> dict:
    return {"kind": "ServiceAccount", "metadata": {"name": name, "namespace": "demo"},
            "secrets": [{"name": s} for s in (secrets if secrets is not None else ["s3creds"])]}


def kinds(creds) -> set[ProblemKind]:
    return {p.kind for p in creds.problems}


def test_s3_env_from_service_account_secret() -> None:
    creds = resolve(isvc(), sa(), {"s3creds": s3_secret()})
    assert creds.ok and creds.source is CredentialSource.SERVICE_ACCOUNT and creds.kind is StorageKind.S3
    assert creds.env == {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "S3_USE_HTTPS": "0",
                         "S3_ENDPOINT": "127.0.0.1:9000", "AWS_ENDPOINT_URL": "http://127.0.0.1:9000"}


def test_secret_values_never_in_repr_str_or_summary() -> None:
    creds = resolve(isvc(), sa(), {"s3creds": s3_secret()})
    for text in (repr(creds), str(creds), str(creds.summary())):
        assert SECRET not in text and KEY_ID not in text
    assert "127.0.0.1:9000" in repr(creds)  # non-secret settings stay readable


def test_https_default_region_verifyssl_and_anonymous() -> None:
    secret = s3_secret(annotations={"serving.kserve.io/s3-endpoint": "s3.example.com",
                                    "serving.kserve.io/s3-region": "eu-west-1",
                                    "serving.kserve.io/s3-verifyssl": "0",
                                    "serving.kserve.io/s3-useanoncredential": "true"})
    env = resolve(isvc(), sa(), {"s3creds": secret}).env
    assert env["AWS_ENDPOINT_URL"] == "https://s3.example.com" and "S3_USE_HTTPS" not in env
    assert env["AWS_DEFAULT_REGION"] == "eu-west-1" and env["S3_VERIFY_SSL"] == "0"
    assert env["awsAnonymousCredential"] == "true"


def test_string_data_counts_like_data() -> None:
    secret = s3_secret(data={})
    secret["stringData"] = {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET}
    assert resolve(isvc(), sa(), {"s3creds": secret}).env["AWS_SECRET_ACCESS_KEY"] == SECRET


def test_storage_secret_name_annotation_wins_over_service_account() -> None:
    other = s3_secret("annotated", annotations={"serving.kserve.io/s3-endpoint": "other:1",
                                                "serving.kserve.io/s3-usehttps": "0"})
    creds = resolve(isvc(annotations={"serving.kserve.io/storageSecretName": "annotated"}), sa(),
                    {"s3creds": s3_secret(), "annotated": other})
    assert creds.source is CredentialSource.ANNOTATION and creds.secret_names == ["annotated"]
    assert creds.env["S3_ENDPOINT"] == "other:1"


def test_service_account_defaults_to_default() -> None:
    creds = resolve(isvc(sa=None), sa("default"), {"s3creds": s3_secret()})
    assert creds.service_account == "default" and creds.ok


def test_gcs_key_file_mounted_and_env() -> None:
    secret = {"metadata": {"name": "gcs"}, "data": {"gcloud-application-credentials.json": b64('{"type": "x"}')}}
    creds = resolve(isvc("gs://models/iris/v1/"), sa(secrets=["gcs"]), {"gcs": secret})
    assert creds.kind is StorageKind.GCS
    assert creds.env == {"GOOGLE_APPLICATION_CREDENTIALS": "/var/secrets/gcloud-application-credentials.json"}
    assert creds.files["/var/secrets/gcloud-application-credentials.json"] == b'{"type": "x"}'
    assert '{"type"' not in repr(creds)


def test_storage_spec_uses_storage_config_secret() -> None:
    obj = isvc()
    obj["spec"]["predictor"]["model"]["storage"] = {"key": "localminio", "path": "iris/v1"}
    secret = {"metadata": {"name": "storage-config"},
              "stringData": {"localminio": '{"type": "s3", "access_key_id": "a", "bucket": "models"}'}}
    creds = resolve(obj, sa(), {"storage-config": secret})
    assert creds.source is CredentialSource.STORAGE_SPEC and creds.kind is StorageKind.S3
    assert "STORAGE_CONFIG" in creds.env and "access_key_id" not in repr(creds)


def test_custom_key_names_from_configmap_json() -> None:
    cfg = CredentialConfig.from_configmap_json('{"s3": {"s3AccessKeyIDName": "ak", "s3SecretAccessKeyName": "sk"}}')
    secret = s3_secret(data={"ak": b64(KEY_ID), "sk": b64(SECRET)})
    assert resolve(isvc(), sa(), {"s3creds": secret}, config=cfg).env["AWS_SECRET_ACCESS_KEY"] == SECRET


# ---- each wiring mistake, with its fix


def test_missing_service_account() -> None:
    creds = resolve(isvc(), None, {"s3creds": s3_secret()})
    (p,) = [p for p in creds.problems if p.kind is ProblemKind.SERVICE_ACCOUNT_MISSING]
    assert "demo/iris-sa" in p.obj and "create ServiceAccount iris-sa" in p.fix
    assert creds.env == {}


def test_secret_listed_but_missing() -> None:
    creds = resolve(isvc(), sa(), {})
    (p,) = [p for p in creds.problems if p.kind is ProblemKind.SECRET_MISSING]
    assert p.obj == "Secret demo/s3creds" and "create Secret s3creds" in p.fix


def test_secret_not_referenced_by_service_account() -> None:
    secret = s3_secret("orphan")
    creds = resolve(isvc(), sa(secrets=[]), {"orphan": secret}, namespace_secrets=[secret])
    (p,) = [p for p in creds.problems if p.kind is ProblemKind.SECRET_NOT_REFERENCED]
    assert p.obj == "Secret demo/orphan" and "add {name: orphan}" in p.fix and not creds.ok


def test_wrong_key_names() -> None:
    secret = s3_secret(data={"accessKey": b64(KEY_ID), "secretKey": b64(SECRET)})
    creds = resolve(isvc(), sa(), {"s3creds": secret})
    assert ProblemKind.WRONG_KEY_NAMES in kinds(creds)
    p = next(p for p in creds.problems if p.kind is ProblemKind.WRONG_KEY_NAMES)
    assert "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in p.fix and SECRET not in str(p)


def test_missing_access_key_id() -> None:
    creds = resolve(isvc(), sa(), {"s3creds": s3_secret(data={"AWS_SECRET_ACCESS_KEY": b64(SECRET)})})
    p = next(p for p in creds.problems if p.kind is ProblemKind.MISSING_KEY)
    assert "AWS_ACCESS_KEY_ID" in p.problem and "add data.AWS_ACCESS_KEY_ID" in p.fix


@pytest.mark.parametrize(("endpoint", "usehttps", "built"), [
    ("http://127.0.0.1:9000", None, "https://http://127.0.0.1:9000"),
    ("https://s3.example.com", "0", "http://https://s3.example.com"),
    ("http://127.0.0.1:9000", "0", "http://http://127.0.0.1:9000"),
])
def test_endpoint_scheme_contradicts_usehttps(endpoint: str, usehttps: str | None, built: str) -> None:
    ann = {"serving.kserve.io/s3-endpoint": endpoint}
    if usehttps is not None:
        ann["serving.kserve.io/s3-usehttps"] = usehttps
    creds = resolve(isvc(), sa(), {"s3creds": s3_secret(annotations=ann)})
    p = next(p for p in creds.problems if p.kind is ProblemKind.ENDPOINT_SCHEME)
    assert built in p.problem and "host[:port] only" in p.fix
    assert creds.env["AWS_ENDPOINT_URL"] == built  # exactly what KServe would inject


def test_legacy_kubeflow_annotations() -> None:
    secret = s3_secret(annotations={"serving.kubeflow.org/s3-endpoint": "h:1"})
    creds = resolve(isvc(), sa(), {"s3creds": secret})
    p = next(p for p in creds.problems if p.kind is ProblemKind.LEGACY_ANNOTATION)
    assert "serving.kserve.io/s3-endpoint" in p.fix


def test_gcs_uri_with_s3_secret() -> None:
    creds = resolve(isvc("gs://models/iris/v1/"), sa(), {"s3creds": s3_secret()})
    assert ProblemKind.WRONG_PROTOCOL in kinds(creds)


def test_annotated_secret_missing() -> None:
    creds = resolve(isvc(annotations={"serving.kserve.io/storageSecretName": "nope"}), sa(), {"s3creds": s3_secret()})
    p = next(p for p in creds.problems if p.kind is ProblemKind.SECRET_MISSING)
    assert "nope" in p.obj and creds.env == {}


def test_no_storage_uri() -> None:
    creds = resolve(isvc(uri=""), sa(), {"s3creds": s3_secret()})
    assert ProblemKind.NO_STORAGE_URI in kinds(creds)


@pytest.mark.unit
def test_warmup_never_empties_a_directory_it_did_not_create(tmp_path: Path) -> None:
    from tasks.errors import InputError
    from tasks.storage.warmup import CACHE_MARKER, check_cache_dir, fresh_cache_dir

    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    for bad in (precious, precious / "notes.txt", Path("/")):
        with pytest.raises(InputError, match="cache_dir"):
            check_cache_dir(bad)
        with pytest.raises(InputError):
            fresh_cache_dir(bad)
    assert (precious / "notes.txt").read_text() == "keep me"
    # a new directory is created and marked; the next run may empty it again, stale files go
    cache = fresh_cache_dir(tmp_path / "cache" / "iris")
    (cache / "model.joblib").write_bytes(b"old")
    assert fresh_cache_dir(cache) == cache and sorted(p.name for p in cache.iterdir()) == [CACHE_MARKER]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert check_cache_dir(empty) == empty.resolve()
