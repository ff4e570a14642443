"""One predictor revision = the storage-initializer step + a real KServe model server process.

:func:`storage_initialize` runs KServe's own download code (``tasks.kserve.storage_initializer.download``) with the
InferenceService's credentials resolved as KServe resolves them (``tasks.kserve.resolve``), after refusing
any endpoint that is not on loopback (the sandbox never contacts another address). :func:`start_server`
starts ``python -m sandbox.kserve.modelserver`` — a :class:`kserve.Model` that loads a scikit-learn
``model.joblib`` / ``model.pkl`` / ``model.pickle`` the way KServe's ``sklearnserver`` looks for it — in the
controller's process group (so ``kaiops sandbox down`` stops it with the controller).

Run as a module it *is* that server: ``python -m sandbox.kserve.modelserver --model_dir D --model_name N
--http_port P``; it serves the v1 protocol (``/v1/models/N:predict``) and KServe's ``/metrics``
(``request_predict_seconds``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

MODEL_FILENAMES = ("model.joblib", "model.pkl", "model.pickle")  # sklearnserver's search order
LOOPBACK = ("127.0.0.1", "localhost", "::1")


class StorageInitError(Exception):
    """The storage-initializer step failed; ``message`` is what the init container's log would end with."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message, self.exit_code = message, exit_code


def _endpoint_problem(uri: str, env: dict[str, str]) -> str:
    """Why downloading ``uri`` with ``env`` would leave the machine ('' when it stays on loopback)."""
    scheme = urlparse(uri).scheme
    if scheme == "s3":
        endpoint = env.get("AWS_ENDPOINT_URL") or env.get("S3_ENDPOINT") or ""
        if not endpoint:
            return ("no S3 endpoint for the storage initializer (no credentials Secret with annotation "
                    "serving.kserve.io/s3-endpoint found for the ServiceAccount); the sandbox does not contact AWS")
        host = urlparse(endpoint if "://" in endpoint else f"http://{endpoint}").hostname or ""
        return "" if host in LOOPBACK else f"S3 endpoint {endpoint} is not on loopback; the sandbox does not contact it"
    if scheme == "gs":
        host = os.environ.get("STORAGE_EMULATOR_HOST", "")
        return "" if urlparse(host).hostname in LOOPBACK else "no sandbox GCS emulator (STORAGE_EMULATOR_HOST)"
    return f"storage URI scheme {scheme!r} is not served by the sandbox (s3:// and gs:// are)"


def storage_initialize(dyn: Any, isvc: dict[str, Any], dest: Path) -> list[str]:
    """Download the model of ``isvc`` into ``dest`` as KServe's storage-initializer init container would.

    Args:
        dyn: Kubernetes dynamic client (reads the ServiceAccount and Secrets of the namespace).
        isvc: the InferenceService.
        dest: the ``/mnt/models`` of this revision (created).

    Returns:
        The downloaded files, relative to ``dest``.

    Raises:
        StorageInitError: the download failed (KServe's message) or would leave loopback.
    """
    from tasks.kserve.resolve import read_and_resolve
    from tasks.kserve.storage_initializer import DownloadError, download

    try:
        _, creds = read_and_resolve(dyn, isvc)
    except Exception as exc:  # apiserver trouble reading SA/Secrets: the pod would not start either
        raise StorageInitError(f"reading storage credentials failed: {exc}") from exc
    uri = creds.storage_uri
    problem = _endpoint_problem(uri, dict(creds.env))
    if problem:
        raise StorageInitError(f"Failed to fetch model from {uri}: {problem}")
    extra = {k: os.environ[k] for k in ("STORAGE_EMULATOR_HOST",) if k in os.environ}
    try:
        result = download(uri, dest, creds, extra_env=extra, timeout=300.0)
    except DownloadError as exc:
        raise StorageInitError(exc.message) from exc
    except Exception as exc:  # TemporaryError (timeout) and anything else: the init container failed
        raise StorageInitError(str(exc)) from exc
    return result.files


def find_model_file(model_dir: Path) -> Path | None:
    """The first of ``model.joblib``/``model.pkl``/``model.pickle`` under ``model_dir`` (any depth)."""
    for name in MODEL_FILENAMES:
        found = sorted(model_dir.rglob(name))
        if found:
            return found[0]
    return None


@dataclass
class ServerProcess:
    """A running model server: its process, port and log."""

    proc: subprocess.Popen
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        """True when the server answers KServe's readiness endpoint ``/v1/models/<name>`` with 200."""
        try:
            with urllib.request.urlopen(f"{self.url}/v2/health/ready", timeout=1.0) as resp:
                return resp.status == 200
        except Exception:
            return False

    def exited(self) -> int | None:
        """Exit code when the process ended, else None."""
        return self.proc.poll()

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; reaps the process."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def start_server(model_dir: Path, model_name: str, port: int, log: Path) -> ServerProcess:
    """Start a KServe model server for ``model_dir`` on ``127.0.0.1:port`` (not waiting for readiness).

    The child stays in the caller's process group (no new session) so stopping the controller's group
    stops it too.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "sandbox.kserve.modelserver", "--model_dir", str(model_dir),
           "--model_name", model_name, "--http_port", str(port)]
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, "PROMETHEUS_DISABLE_CREATED_SERIES": "True"})
    return ServerProcess(proc=proc, port=port, log=log)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the model-server process."""
    parser = argparse.ArgumentParser(description="sandbox KServe scikit-learn model server")
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--model_name", required=True)
    parser.add_argument("--http_port", type=int, required=True)
    args, _ = parser.parse_known_args(argv)
    sys.argv = sys.argv[:1]  # kserve parses sys.argv at import; give it nothing of ours

    import joblib
    import numpy as np
    import uvicorn
    from kserve import Model, ModelServer

    # KServe's REST server binds 0.0.0.0; the sandbox listens on loopback only.
    original_init = uvicorn.Config.__init__

    def loopback_init(self: Any, *a: Any, **kw: Any) -> None:
        kw["host"] = "127.0.0.1"
        original_init(self, *a, **kw)

    uvicorn.Config.__init__ = loopback_init  # type: ignore[method-assign]

    class SKLearnModel(Model):
        """A KServe model that predicts with a joblib/pickle scikit-learn estimator (v1 protocol)."""

        def __init__(self, name: str, model_dir: str) -> None:
            super().__init__(name)
            self.model_dir = Path(model_dir)
            self._model: Any = None

        def load(self) -> bool:
            path = find_model_file(self.model_dir)
            if path is None:
                raise RuntimeError(f"Missing model file in {self.model_dir}: expected one of {MODEL_FILENAMES}")
            self._model = joblib.load(path)
            self.ready = True
            return self.ready

        def predict(self, payload: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
            instances = payload["instances"] if isinstance(payload, dict) else payload
            result = self._model.predict(np.asarray(instances))
            return {"predictions": result.tolist()}

    model = SKLearnModel(args.model_name, args.model_dir)
    model.load()
    ModelServer(http_port=args.http_port, enable_grpc=False, workers=1).start([model])


if __name__ == "__main__":
    main()
