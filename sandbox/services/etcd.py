"""etcd 3.6, built from go.etcd.io/etcd/server/v3; the apiserver's storage. Fresh data on every start."""

from __future__ import annotations

import shutil

from sandbox.paths import binary
from sandbox.procs import free_port
from sandbox.services.base import Launch, Service, http_ok
from sandbox.state import SandboxState, ServiceRecord


class Etcd(Service):
    name = "etcd"
    ready_timeout = 60.0

    def launch(self, state: SandboxState) -> Launch:
        data = self.data_dir(state)
        shutil.rmtree(data)  # the sandbox cluster starts empty; nothing in it is precious
        client, peer = free_port(), free_port()
        url = f"http://127.0.0.1:{client}"
        cmd = [
            str(binary("etcd")),
            "--name=sandbox",
            f"--data-dir={data}",
            f"--listen-client-urls={url}",
            f"--advertise-client-urls={url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=sandbox=http://127.0.0.1:{peer}",
            "--unsafe-no-fsync",
            "--log-level=warn",
        ]
        return Launch(cmd=cmd, url=url, ports={"client": client, "peer": peer})

    def healthy(self, state: SandboxState, record: ServiceRecord) -> bool:
        return http_ok(f"{record.url}/health")
