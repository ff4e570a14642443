"""S3: moto in server mode, a real HTTP S3 endpoint (``AWS_ENDPOINT_URL``)."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

from sandbox.services.base import Launch, Service, http_ok
from sandbox.state import SandboxState, ServiceRecord


class MotoS3(Service):
    name = "s3"
    ready_timeout = 60.0

    def launch(self, state: SandboxState) -> Launch:
        port = self.port(state, "http")
        # moto accepts any key; per-instance random keys keep real-looking credentials out of fixtures.
        state.secrets.setdefault("aws_access_key_id", "SANDBOX" + secrets.token_hex(6).upper())
        state.secrets.setdefault("aws_secret_access_key", secrets.token_urlsafe(30))
        moto = Path(sys.executable).with_name("moto_server")
        return Launch(cmd=[str(moto), "-H", "127.0.0.1", "-p", str(port)], url=f"http://127.0.0.1:{port}",
                      ports={"http": port})

    def healthy(self, state: SandboxState, record: ServiceRecord) -> bool:
        # ListBuckets (GET /) stays cheap however much is stored; /moto-api/data.json dumps every object
        # and times out once large models are stored.
        return http_ok(f"{record.url}/")

    def env(self, state: SandboxState, record: ServiceRecord) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": record.url,
            "AWS_ACCESS_KEY_ID": state.secrets["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": state.secrets["aws_secret_access_key"],
            "AWS_DEFAULT_REGION": "us-east-1",
        }
