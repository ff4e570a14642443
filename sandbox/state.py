"""The one state file of a sandbox instance: which processes it started, their addresses and logs.

``state.json`` in the instance directory; written atomically after every change, so ``down`` stops exactly
what ``up`` started, even from another shell.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class ServiceRecord:
    """One running service.

    Attributes:
        name: service name (``etcd``, ``kube-apiserver``, ``prometheus``, ``s3``, ``gcs``, ``ray``, ``prefect``).
        pid: process id; also the process-group id (each service runs in its own session).
        url: the main address clients use.
        log: path of the service's log file.
        ports: every port it listens on, by role (``{"client": 2379, "peer": 2380}``).
    """

    name: str
    pid: int
    url: str
    log: str
    ports: dict[str, int] = field(default_factory=dict)


@dataclass
class SandboxState:
    """Everything one sandbox instance knows about itself."""

    dir: Path
    services: dict[str, ServiceRecord] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)  # per-instance S3 keys; never printed by status
    # Ports of services being restarted (not saved): a restarted service takes its old ports back when free,
    # so addresses already exported (PROMETHEUS_URL, ...) stay valid.
    previous_ports: dict[str, dict[str, int]] = field(default_factory=dict)
    # True while `up` starts an instance none of whose processes is alive (a new sandbox, or after a reboot):
    # services then start from empty data. A partial restart keeps data (etcd objects, Prometheus series).
    fresh: bool = False

    @property
    def path(self) -> Path:
        return self.dir / "state.json"

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    @classmethod
    def load(cls, directory: Path) -> SandboxState:
        """Read the state file in ``directory`` (an empty state when there is none)."""
        path = directory / "state.json"
        if not path.exists():
            return cls(dir=directory)
        raw = json.loads(path.read_text())
        return cls(
            dir=directory,
            services={k: ServiceRecord(**v) for k, v in raw.get("services", {}).items()},
            secrets=raw.get("secrets", {}),
        )

    def save(self) -> None:
        """Write the state file atomically, readable by its owner only (it holds the sandbox's S3 keys)."""
        tmp = self.path.with_suffix(".tmp")
        payload = {"services": {k: asdict(v) for k, v in self.services.items()}, "secrets": self.secrets}
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(payload, out, indent=2)
        tmp.replace(self.path)
