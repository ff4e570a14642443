"""Every sandbox service is a real process answering its real protocol on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import boto3
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

pytestmark = pytest.mark.integration


def test_s3_round_trip(sandbox) -> None:
    s3 = boto3.client("s3", endpoint_url=sandbox["AWS_ENDPOINT_URL"])
    bucket = f"b-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="models/iris/v1/model.joblib", Body=b"weights")
    assert s3.get_object(Bucket=bucket, Key="models/iris/v1/model.joblib")["Body"].read() == b"weights"
    assert sandbox["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")


def test_gcs_round_trip(sandbox) -> None:
    gcs = storage.Client(project="sandbox", credentials=AnonymousCredentials())
    bucket = gcs.create_bucket(f"b-{uuid.uuid4().hex[:8]}")
    bucket.blob("models/iris/v1/model.joblib").upload_from_string(b"weights")
    assert bucket.blob("models/iris/v1/model.joblib").download_as_bytes() == b"weights"
    assert sandbox["STORAGE_EMULATOR_HOST"].startswith("http://127.0.0.1:")


def test_ray_job_submission_runs_a_real_job(sandbox) -> None:
    from ray.job_submission import JobStatus, JobSubmissionClient

    client = JobSubmissionClient(sandbox["RAY_ADDRESS"])
    job = client.submit_job(
        entrypoint="python -c \"import ray; ray.init(); print('sum', sum(ray.get([ray.remote(lambda x: x * x)"
        ".remote(i) for i in range(10)])))\""
    )
    deadline = time.monotonic() + 180
    while client.get_job_status(job) not in {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}:
        assert time.monotonic() < deadline, client.get_job_logs(job)
        time.sleep(1)
    assert client.get_job_status(job) == JobStatus.SUCCEEDED, client.get_job_logs(job)
    assert "sum 285" in client.get_job_logs(job)


def test_smoke_job_runs_on_the_cluster_it_is_given_whatever_ray_address_says(sandbox, monkeypatch) -> None:
    from tasks.ray.jobs import smoke_test

    monkeypatch.setenv("RAY_ADDRESS", "http://127.0.0.1:9")  # a shell pointed at another cluster
    result = smoke_test(sandbox["RAY_ADDRESS"], timeout=180)
    assert result.succeeded, result.logs


def test_prometheus_scrapes_itself(sandbox) -> None:
    url = sandbox["PROMETHEUS_URL"] + "/api/v1/query?" + urllib.parse.urlencode({"query": 'up{job="prometheus"}'})
    deadline = time.monotonic() + 30
    while True:
        with urllib.request.urlopen(url, timeout=5) as resp:
            result = json.load(resp)["data"]["result"]
        if result or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert result and result[0]["value"][1] == "1"


def test_prefect_server_answers(sandbox) -> None:
    with urllib.request.urlopen(sandbox["PREFECT_API_URL"] + "/health", timeout=5) as resp:
        assert json.load(resp) is True


def test_cli_status_and_env_describe_the_running_sandbox(sandbox) -> None:
    kaiops = str(Path(sys.executable).with_name("kaiops"))
    status = json.loads(subprocess.run([kaiops, "sandbox", "status", "-o", "json"], check=True,
                                       capture_output=True, text=True).stdout)
    from sandbox.launcher import DEFAULT_SERVICES

    assert {row["name"]: row["state"] for row in status} == dict.fromkeys(DEFAULT_SERVICES, "healthy")
    exports = subprocess.run([kaiops, "sandbox", "env"], check=True, capture_output=True, text=True).stdout
    for key in ("KUBECONFIG", "AWS_ENDPOINT_URL", "STORAGE_EMULATOR_HOST", "PROMETHEUS_URL", "PREFECT_API_URL",
                "RAY_ADDRESS"):
        assert f"export {key}={sandbox[key]}" in exports
    table = subprocess.run([kaiops, "sandbox", "status"], check=True, capture_output=True, text=True).stdout
    assert sandbox["AWS_SECRET_ACCESS_KEY"] not in table
