"""etcd 3.6, built from go.etcd.io/etcd/server/v3; the apiserver's storage.

A fresh sandbox (no process of the instance alive) starts with an empty etcd; restarting a dead etcd inside a
running sandbox keeps its data (and its ports when free)."""

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
        # A fresh sandbox starts empty; a restart inside a running sandbox keeps its objects.
        if state.fresh or self.name not in state.previous_ports:
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
