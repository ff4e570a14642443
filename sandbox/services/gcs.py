"""GCS: fake-gcs-server (github.com/fsouza/fake-gcs-server), used through ``STORAGE_EMULATOR_HOST``."""

from __future__ import annotations

from sandbox.paths import binary
from sandbox.services.base import Launch, Service, http_ok
from sandbox.state import SandboxState, ServiceRecord


class FakeGcs(Service):
    name = "gcs"
    ready_timeout = 30.0

    def launch(self, state: SandboxState) -> Launch:
        port = self.port(state, "http")
        url = f"http://127.0.0.1:{port}"
        cmd = [
            str(binary("fake-gcs-server")),
            "-scheme", "http", "-host", "127.0.0.1", "-port", str(port),
            "-backend", "memory", "-public-host", f"127.0.0.1:{port}", "-external-url", url,
            "-log-level", "warn",
        ]
        return Launch(cmd=cmd, url=url, ports={"http": port})

    def healthy(self, state: SandboxState, record: ServiceRecord) -> bool:
        return http_ok(f"{record.url}/storage/v1/b?project=sandbox")

    def env(self, state: SandboxState, record: ServiceRecord) -> dict[str, str]:
        return {"STORAGE_EMULATOR_HOST": record.url, "GOOGLE_CLOUD_PROJECT": "sandbox"}
