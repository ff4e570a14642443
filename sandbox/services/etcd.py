"""etcd 3.6, built from go.etcd.io/etcd/server/v3; the apiserver's storage.

A fresh sandbox starts with an empty etcd; a restart of a dead etcd (same ports) keeps its data."""

from __future__ import annotations

import shutil

from sandbox.paths import binary
from sandbox.services.base import Launch, Service, http_ok
from sandbox.state import SandboxState, ServiceRecord


class Etcd(Service):
    name = "etcd"
    ready_timeout = 60.0

    def launch(self, state: SandboxState) -> Launch:
        data = self.data_dir(state)
        if self.name not in state.previous_ports:  # a fresh sandbox starts empty; a restart keeps its objects
            shutil.rmtree(data)
            data.mkdir()
        client, peer = self.port(state, "client"), self.port(state, "peer")
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
