"""Publishing to the sandbox S3 (moto) and GCS (fake-gcs-server): manifest last, resume, republish, force."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tasks.errors import InputError
from tasks.storage import PublishOutcome, list_versions, parse_uri, publish, read_manifest

pytestmark = pytest.mark.integration


def make_model(root: Path, files: int = 6, size: int = 40_000) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        sub = root / ("weights" if i % 2 else "")
        sub.mkdir(exist_ok=True)
        (sub / f"part-{i}.bin").write_bytes(bytes([i]) * (size + i))
    (root / "model.joblib").write_bytes(b"model" * 100)
    return root


@pytest.fixture(scope="module")
def object_stores():
    """Only the sandbox S3 (moto) and GCS (fake-gcs-server): publishing needs nothing else."""
    from sandbox import launcher
    from tests.sandbox_env import exported

    launcher.up(("s3", "gcs"))
    with exported(launcher.env()) as values:
        yield values


@pytest.fixture(params=["s3", "gs"])
def store_and_bucket(request, object_stores):
    bucket = f"pub-{uuid.uuid4().hex[:10]}"
    if request.param == "s3":
        from tasks.storage.s3 import S3Store

        store = S3Store.from_env(multipart_threshold=64 * 1024, multipart_chunksize=5 * 1024 * 1024)
    else:
        from tasks.storage.gcs import GcsStore

        store = GcsStore.from_env()
    store.create_bucket(bucket)
    return store, f"{request.param}://{bucket}"


class FailAfter:
    """Wraps a store; the (n+1)-th file upload raises, as a killed process would stop mid-publish."""

    def __init__(self, store, n: int) -> None:
        self.store, self.n, self.calls, self.seen_versions = store, n, 0, []
        self.scheme = store.scheme

    def __getattr__(self, name):
        return getattr(self.store, name)

    def upload_file(self, bucket, key, path, sha256=None, progress=None):
        self.calls += 1
        if self.calls > self.n:
            raise ConnectionError("simulated interruption")
        return self.store.upload_file(bucket, key, path, sha256, progress)


def test_publish_then_republish_uploads_nothing(tmp_path: Path, store_and_bucket) -> None:
    store, base = store_and_bucket
    src = make_model(tmp_path / "m")
    first = publish(src, f"{base}/iris/v1", store, model_format="sklearn", workers=4)
    assert first.outcome is PublishOutcome.PUBLISHED and len(first.files_uploaded) == 7
    manifest = read_manifest(store, parse_uri(f"{base}/iris/v1"))
    assert manifest is not None and manifest.model_format == "sklearn"
    assert {f.path for f in manifest.files} == {"model.joblib", *(p.relative_to(src).as_posix()
                                                                   for p in src.rglob("*.bin"))}
    again = publish(src, f"{base}/iris/v1", store, model_format="sklearn")
    assert again.outcome is PublishOutcome.UNCHANGED and again.files_uploaded == [] and again.bytes_uploaded == 0
    assert list(list_versions(store, f"{base}/iris/")) == ["v1"]


def test_interrupted_publish_is_invisible_then_resumes(tmp_path: Path, store_and_bucket) -> None:
    store, base = store_and_bucket
    src = make_model(tmp_path / "m")
    dest = f"{base}/iris/v2"
    with pytest.raises(ConnectionError):
        publish(src, dest, FailAfter(store, 3), workers=1)
    # files are there, the manifest is not: no reader sees the version
    uri = parse_uri(dest)
    assert len(store.list(uri.bucket, uri.prefix)) == 3
    assert read_manifest(store, uri) is None and list_versions(store, f"{base}/iris/") == {}
    resumed = publish(src, dest, store)
    assert resumed.outcome is PublishOutcome.RESUMED
    assert resumed.files_skipped == 3 and len(resumed.files_uploaded) == 4
    assert list(list_versions(store, f"{base}/iris/")) == ["v2"]


def test_changed_content_refused_without_force_and_only_changed_uploaded_with_it(tmp_path: Path,
                                                                                 store_and_bucket) -> None:
    store, base = store_and_bucket
    src = make_model(tmp_path / "m")
    dest = f"{base}/iris/v3"
    publish(src, dest, store)
    (src / "model.joblib").write_bytes(b"retrained")
    with pytest.raises(InputError) as err:
        publish(src, dest, store)
    assert dest in str(err.value) and "model.joblib" in str(err.value) and "--force" in str(err.value)
    old = read_manifest(store, parse_uri(dest))
    assert old is not None and old.by_path()["model.joblib"].size == 500  # untouched
    forced = publish(src, dest, store, force=True)
    assert forced.outcome is PublishOutcome.UPDATED and forced.files_uploaded == ["model.joblib"]
    assert read_manifest(store, parse_uri(dest)).by_path()["model.joblib"].size == len(b"retrained")


def test_missing_bucket_is_input_error(tmp_path: Path, store_and_bucket) -> None:
    store, base = store_and_bucket
    scheme = base.split("://")[0]
    with pytest.raises(InputError, match="does not exist"):
        publish(make_model(tmp_path / "m", files=1), f"{scheme}://no-such-bucket-{uuid.uuid4().hex[:6]}/x/v1", store)


def test_cli_publish_refuses_overwrite_with_exit_2(tmp_path: Path, sandbox) -> None:
    import subprocess
    import sys

    from tasks.storage.s3 import S3Store

    bucket = f"cli-{uuid.uuid4().hex[:8]}"
    S3Store.from_env().create_bucket(bucket)
    src = make_model(tmp_path / "m", files=1)
    publish(src, f"s3://{bucket}/m/v1", S3Store.from_env())
    (src / "model.joblib").write_bytes(b"other")
    kaiops = Path(sys.executable).with_name("kaiops")
    proc = subprocess.run([str(kaiops), "publish", str(src), f"s3://{bucket}/m/v1", "-o", "json"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"s3://{bucket}/m/v1/" in proc.stderr


@pytest.fixture(scope="module")
def s3_only():
    """Only the sandbox S3 (moto), for tests that need nothing else."""
    from sandbox import launcher
    from tests.sandbox_env import exported

    launcher.up(("s3",))
    with exported(launcher.env()) as values:
        yield values


def test_republish_without_model_format_keeps_the_published_one(tmp_path: Path, s3_only) -> None:
    from tasks.storage.s3 import S3Store

    store = S3Store.from_env()
    bucket = f"pub-{uuid.uuid4().hex[:10]}"
    store.create_bucket(bucket)
    src = make_model(tmp_path / "m", files=2, size=1000)
    dest = f"s3://{bucket}/iris/v1"
    publish(src, dest, store, model_format="sklearn")
    again = publish(src, dest, store)  # no --model-format: the same model, not "different content"
    assert again.outcome is PublishOutcome.UNCHANGED
    assert read_manifest(store, parse_uri(dest)).model_format == "sklearn"
    with pytest.raises(InputError) as err:
        publish(src, dest, store, model_format="xgboost")
    assert "model format sklearn -> xgboost" in str(err.value)
    assert "--model-format sklearn" in err.value.fix


def test_s3_single_put_carries_the_manifest_sha256_as_its_checksum(tmp_path: Path, s3_only) -> None:
    """Each small file goes in one PUT whose x-amz-checksum-sha256 is the manifest's sha256 (AWS verifies it;
    moto does not keep it, so the request headers are what is checked), with UNSIGNED-PAYLOAD (no second hash)."""
    import base64

    from tasks.storage.s3 import S3Store

    bucket = f"chk-{uuid.uuid4().hex[:8]}"
    store = S3Store.from_env()
    store.create_bucket(bucket)
    sent: dict[str, dict[str, str]] = {}

    def record(request, **_kwargs) -> None:
        key = request.url.split(f"/{bucket}/", 1)[-1]
        sent[key] = {k.lower(): (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()}

    store.client.meta.events.register("before-send.s3.PutObject", record)
    src = make_model(tmp_path / "m", files=2)
    publish(src, f"s3://{bucket}/m/v1", store, hash_cache=False)
    manifest = read_manifest(store, parse_uri(f"s3://{bucket}/m/v1"))
    for entry in manifest.files:
        headers = sent[f"m/v1/{entry.path}"]
        assert headers["x-amz-checksum-sha256"] == base64.b64encode(bytes.fromhex(entry.sha256)).decode()
        assert headers["x-amz-meta-sha256"] == entry.sha256
        assert headers["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"


def test_s3_multipart_hashes_while_sending_and_records_the_sha256_as_a_tag(tmp_path: Path, s3_only) -> None:
    """A file above the multipart threshold is read once: its parts go out while the sha256 of the whole is
    computed in order; the manifest, the object's tag (read back by head) and the bytes all agree, and a resume
    skips the object by that tag."""
    import hashlib

    from tasks.storage.s3 import S3Store

    store = S3Store.from_env(multipart_threshold=64 * 1024, multipart_chunksize=5 * 1024 * 1024,
                             max_concurrency=2, parallel_parts=True)
    bucket = f"mp-{uuid.uuid4().hex[:8]}"
    store.create_bucket(bucket)
    src = tmp_path / "m"
    src.mkdir()
    data = b"".join(i.to_bytes(4, "big") * 65536 for i in range(48))  # 12 MiB: 3 parts of 5, 5 and 2 MiB
    (src / "weights.bin").write_bytes(data)
    parts: list[int] = []
    store.client.meta.events.register("before-send.s3.UploadPart",
                                      lambda request, **_: parts.append(int(request.headers["Content-Length"])))
    sent: list[int] = []
    first = publish(src, f"s3://{bucket}/m/v1", store, hash_cache=False,
                    progress=type("P", (), {"start": lambda *a: None, "advance": lambda _s, n: sent.append(n),
                                            "finish": lambda _s: None})())
    want = hashlib.sha256(data).hexdigest()
    assert first.manifest is not None and first.manifest.files[0].sha256 == want
    assert sorted(parts) == sorted([5 << 20, 5 << 20, 2 << 20]) and sum(sent) == len(data)
    head = store.head(bucket, "m/v1/weights.bin")
    assert head is not None and head.sha256 == want and head.size == len(data)
    assert store.get_bytes(bucket, "m/v1/weights.bin") == data
    # an interrupted publish left the object but no manifest: the resume finds it by its tag and skips it
    store.delete(bucket, ["m/v1/manifest.json"])
    resumed = publish(src, f"s3://{bucket}/m/v1", store, hash_cache=False)
    assert resumed.outcome is PublishOutcome.RESUMED and resumed.files_uploaded == []


def test_s3_large_file_to_a_local_endpoint_is_one_put_hashed_as_it_is_sent(tmp_path: Path, s3_only) -> None:
    """Against an endpoint on this machine (moto on loopback) a file above the threshold goes in one streamed PUT
    (no multipart: the server shares the cores); the sha256 computed from the bytes sent is in the manifest and
    in the object's tag."""
    import hashlib

    from tasks.storage.s3 import S3Store

    store = S3Store.from_env(multipart_threshold=64 * 1024)
    assert store.parallel_parts is False  # the sandbox's endpoint is 127.0.0.1
    bucket = f"st-{uuid.uuid4().hex[:8]}"
    store.create_bucket(bucket)
    src = tmp_path / "m"
    src.mkdir()
    data = b"".join(i.to_bytes(4, "big") * 4096 for i in range(300))  # 4.7 MiB
    (src / "weights.bin").write_bytes(data)
    ops: list[str] = []
    store.client.meta.events.register("before-send.s3.*", lambda request, event_name, **_: ops.append(
        event_name.rsplit(".", 1)[-1]))
    first = publish(src, f"s3://{bucket}/m/v1", store, hash_cache=False)
    want = hashlib.sha256(data).hexdigest()
    assert first.manifest is not None and first.manifest.files[0].sha256 == want
    assert "CreateMultipartUpload" not in ops and ops.count("PutObject") == 2  # the file, then the manifest
    head = store.head(bucket, "m/v1/weights.bin")
    assert head is not None and head.sha256 == want
    assert store.get_bytes(bucket, "m/v1/weights.bin") == data


def test_loopback_endpoints_are_told_from_remote_ones() -> None:
    from tasks.storage.s3 import _loopback

    assert _loopback("http://127.0.0.1:9000") and _loopback("http://localhost:1") and _loopback("http://[::1]:2")
    assert not _loopback("https://s3.us-east-1.amazonaws.com") and not _loopback("http://10.0.0.5:9000")
    assert not _loopback(None)
