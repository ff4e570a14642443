"""A real Prefect server (``prefect server start``, SQLite) for deployments, schedules, triggers and the UI.

CLI flow runs use Prefect's ephemeral API unless ``PREFECT_API_URL`` points here.
"""

from __future__ import annotations

import sys
from pathlib import Path

from sandbox.services.base import Launch, Service, http_ok
from sandbox.state import SandboxState, ServiceRecord


class PrefectServer(Service):
    name = "prefect"
    ready_timeout = 180.0

    def launch(self, state: SandboxState) -> Launch:
        port = self.port(state, "http")
        home = self.data_dir(state)
        env = {
            "PREFECT_HOME": str(home),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_API_HOST": "127.0.0.1",
            "PREFECT_SERVER_API_PORT": str(port),
            "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
            "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api",
        }
        prefect = Path(sys.executable).with_name("prefect")
        cmd = [str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
        return Launch(cmd=cmd, url=f"http://127.0.0.1:{port}/api", ports={"http": port}, env=env)

    def healthy(self, state: SandboxState, record: ServiceRecord) -> bool:
        return http_ok(f"{record.url}/health")

    def env(self, state: SandboxState, record: ServiceRecord) -> dict[str, str]:
        return {"PREFECT_API_URL": record.url}
