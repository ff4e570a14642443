"""A real MLflow tracking + model-registry server (``mlflow server``, SQLite backend) with webhooks on.

Model-registry webhooks need a SQL store and an encryption key for the webhook secrets they keep:
the key (a Fernet key) is generated once per instance and kept in the state file's ``secrets``. Webhook
delivery to a loopback receiver needs ``http`` allowed and private addresses allowed
(``mlflow/utils/validation.py::_validate_webhook_url``, ``mlflow/webhooks/ssrf.py``). The server caches
the webhook list for ``MLFLOW_WEBHOOK_CACHE_TTL`` seconds (default 60): we set 1 s so a webhook created a
moment ago receives the next event. Telemetry is off (``MLFLOW_DISABLE_TELEMETRY``, ``DO_NOT_TRACK``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from sandbox.services.base import Launch, Service, http_ok
from sandbox.state import SandboxState, ServiceRecord

# Environment that keeps every MLflow process (server and clients) off the internet.
MLFLOW_OFFLINE_ENV = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
WEBHOOK_KEY_SECRET = "mlflow_webhook_encryption_key"


class MlflowServer(Service):
    name = "mlflow"
    ready_timeout = 180.0

    def launch(self, state: SandboxState) -> Launch:
        from cryptography.fernet import Fernet

        port = self.port(state, "http")
        home = self.data_dir(state)
        artifacts = home / "artifacts"
        artifacts.mkdir(parents=True, exist_ok=True)
        state.secrets.setdefault(WEBHOOK_KEY_SECRET, Fernet.generate_key().decode())
        env = {
            **MLFLOW_OFFLINE_ENV,
            "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http",
            "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
            "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": state.secrets[WEBHOOK_KEY_SECRET],
            "MLFLOW_WEBHOOK_CACHE_TTL": "1",
            "MLFLOW_WEBHOOK_REQUEST_TIMEOUT": "10",
            # no job runner + 7 Huey consumers (GenAI jobs; ~1.7 GiB idle); webhooks run on a server thread pool
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }
        mlflow = Path(sys.executable).with_name("mlflow")
        cmd = [
            str(mlflow), "server",
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}",
            "--artifacts-destination", str(artifacts),
            "--serve-artifacts",
        ]
        return Launch(cmd=cmd, url=f"http://127.0.0.1:{port}", ports={"http": port}, env=env, cwd=home)

    def healthy(self, state: SandboxState, record: ServiceRecord) -> bool:
        return http_ok(f"{record.url}/health")

    def env(self, state: SandboxState, record: ServiceRecord) -> dict[str, str]:
        return {"MLFLOW_TRACKING_URI": record.url, **MLFLOW_OFFLINE_ENV}
