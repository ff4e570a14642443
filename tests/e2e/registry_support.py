"""Helpers for the registry/deployment tests: start only the sandbox services they need, talk to the
sandbox Prefect server from this process, register model versions in the sandbox MLflow."""

from __future__ import annotations

import contextlib
import os
import pathlib
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from sandbox.procs import free_port
from tests.sandbox_env import prefect_api, sandbox_services  # noqa: F401 - the registry tests' imports

REPO = pathlib.Path(__file__).resolve().parents[2]


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 1.0) -> Any:
    """Call ``check`` until it returns something truthy; return it. Raise AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not seen within {timeout:.0f}s")
        time.sleep(every)


def release_runs(model: str) -> list[Any]:
    """Flow runs of the ``release`` flow whose ``request.model`` is ``model``."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["release"])), limit=200)
    return [r for r in runs if ((r.parameters or {}).get("request") or {}).get("model") == model]


def delete_runs(runs: list[Any]) -> None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        for run in runs:
            with contextlib.suppress(Exception):
                client.delete_flow_run(run.id)


def register_version(model: str, payload: bytes = b"model-bytes") -> int:
    """Log a one-file model artifact in a run and register it as a new version of ``model``; return it."""
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient()
    with contextlib.suppress(Exception):
        client.create_registered_model(model)
    mlflow.set_experiment("kaiops-tests")
    with tempfile.TemporaryDirectory() as tmp:
        (pathlib.Path(tmp) / "model.joblib").write_bytes(payload)
        with mlflow.start_run() as run:
            mlflow.log_artifacts(tmp, "model")
    mv = client.create_model_version(model, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    return int(mv.version)


def write_release_config(directory: pathlib.Path, model: str, *, trigger: str = "alias_set") -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{model}.yaml").write_text(
        f"registered_model: {model}\ninference_service: {model[:50]}\nnamespace: kaiops-e2e\n"
        f"destination_prefix: s3://kaiops-models/{model}\ntrigger: {trigger}\ntrigger_alias: challenger\n")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@contextlib.contextmanager
def receiver(releases_dir: pathlib.Path, secret: str, state: pathlib.Path) -> Iterator[str]:
    """Run ``kaiops registry serve`` on a free loopback port; yield its ``/mlflow`` URL."""
    port = free_port()
    env = {**os.environ, "KAIOPS_REGISTRY_WEBHOOK_SECRET": secret}
    log = state.with_suffix(".log")
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(pathlib.Path(sys.executable).with_name("kaiops")), "registry", "serve", "--port", str(port),
             "--releases", str(releases_dir), "--state", str(state)],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"receiver exited: {log.read_text()[-2000:]}")
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False
        wait_for(up, 120, "registry receiver", every=0.5)
        yield f"http://127.0.0.1:{port}/mlflow"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        assert secret not in log.read_text(), "the receiver logged the webhook secret"
