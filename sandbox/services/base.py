"""What every sandbox service provides to the launcher."""

from __future__ import annotations

import ssl
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from sandbox.procs import free_port, port_free
from sandbox.state import SandboxState, ServiceRecord


@dataclass
class Launch:
    """How to start a service: the command, extra environment, its ports by role and its main URL."""

    cmd: list[str]
    url: str
    ports: dict[str, int]
    env: dict[str, str | None] | None = None  # None removes a variable from the inherited environment
    cwd: Path | None = None


class Service:
    """A sandbox service. Subclasses set ``name``/``needs`` and implement :meth:`launch` and :meth:`healthy`."""

    name: str = ""
    needs: tuple[str, ...] = ()  # services that must be healthy before this one starts
    # services that cannot run beside this one in an instance (two controllers of the same kind): starting this
    # one stops them first (and runs their cleanup, also when they are not running); see launcher.up
    conflicts: tuple[str, ...] = ()
    ready_timeout: float = 90.0  # seconds from start to healthy

    def launch(self, state: SandboxState) -> Launch:
        """Prepare directories and return how to start the process (nothing is started here)."""
        raise NotImplementedError

    def healthy(self, state: SandboxState, record: ServiceRecord) -> bool:
        """True when the service answers its health endpoint."""
        raise NotImplementedError

    def after_ready(self, state: SandboxState, record: ServiceRecord) -> None:
        """One-time set-up once healthy (e.g. install CRDs). Must be idempotent."""

    def env(self, state: SandboxState, record: ServiceRecord) -> dict[str, str]:
        """The environment variables a shell needs to use this service."""
        return {}

    def cleanup(self, state: SandboxState) -> None:
        """Remove what the stopped process may have left behind (namespaces, links); idempotent."""

    def port(self, state: SandboxState, role: str) -> int:
        """A loopback port for ``role``: the one this service had before a restart when still free, else a new one."""
        previous = state.previous_ports.get(self.name, {}).get(role)
        return previous if previous and port_free(previous) else free_port()

    def data_dir(self, state: SandboxState) -> Path:
        path = state.dir / self.name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def log_path(self, state: SandboxState) -> Path:
        return state.dir / "logs" / f"{self.name}.log"


def http_ok(url: str, context: ssl.SSLContext | None = None, timeout: float = 2.0) -> bool:
    """True when GET ``url`` answers 2xx."""
    with urllib.request.urlopen(url, timeout=timeout, context=context) as resp:
        return 200 <= resp.status < 300


class ControllerService(Service):
    """An emulated controller run as ``python -m <module> --kubeconfig K --root DIR --health-file F``.

    Healthy once the controller wrote its own pid into the health file (it does so after its first list of
    the objects it watches). Its children (Ray heads, model servers) share its process group.
    """

    module: str = ""
    needs = ("kube-apiserver",)
    ready_timeout = 60.0

    def root(self, state: SandboxState) -> Path:
        """Where the controller keeps its files (default: the service's data directory)."""
        return self.data_dir(state)

    def health_file(self, state: SandboxState) -> Path:
        return self.data_dir(state) / "healthy"

    def launch(self, state: SandboxState) -> Launch:
        health = self.health_file(state)
        health.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", self.module, f"--kubeconfig={state.kubeconfig}",
               f"--root={self.root(state)}", f"--health-file={health}"]
        return Launch(cmd=cmd, url=f"file://{health}", ports={})

    def healthy(self, state: SandboxState, record: ServiceRecord) -> bool:
        health = self.health_file(state)
        return health.exists() and health.read_text().strip() == str(record.pid)


def token_kubeconfig(admin_kubeconfig: Path, out: Path, user: str, token: str, *, server: str | None = None,
                     namespace: str | None = None) -> Path:
    """Write (atomically, mode 0600) a kubeconfig for a ServiceAccount: the admin kubeconfig's cluster and CA,
    ``server`` instead of its address when given (a process inside the node network), and bearer ``token``.

    Args:
        admin_kubeconfig: the sandbox's admin kubeconfig (its first cluster is used).
        out: where to write.
        user: the user (and context) name, e.g. the ServiceAccount's name.
        token: a TokenRequest token of that ServiceAccount.
        server: ``https://host:port`` to use instead of the admin kubeconfig's.
        namespace: the context's default namespace, if any.

    Returns:
        ``out``.
    """
    import yaml

    admin = yaml.safe_load(admin_kubeconfig.read_text())
    cluster = dict(admin["clusters"][0]["cluster"])
    if server:
        cluster["server"] = server
    context: dict[str, str] = {"cluster": "sandbox", "user": user}
    if namespace:
        context["namespace"] = namespace
    config = {"apiVersion": "v1", "kind": "Config",
              "clusters": [{"name": "sandbox", "cluster": cluster}],
              "users": [{"name": user, "user": {"token": token}}],
              "contexts": [{"name": user, "context": context}],
              "current-context": user}
    tmp = out.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    tmp.chmod(0o600)
    tmp.replace(out)
    return out


#: Lifetime of the ServiceAccount tokens the sandbox's operators run with: a sandbox lives for hours.
TOKEN_SECONDS = 7 * 24 * 3600


def service_account_token(kubeconfig: str, name: str, namespace: str, seconds: int = TOKEN_SECONDS) -> str:
    """A TokenRequest token (``seconds`` long, default audiences) for ServiceAccount ``namespace/name``, requested
    with the admin ``kubeconfig``; what a Pod's projected ``kube-api-access`` volume would hold."""
    from kubernetes import client

    from tasks import kube

    api = client.CoreV1Api(kube.connect(kubeconfig).client)
    body = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[],
                                                                              expiration_seconds=seconds))
    return str(api.create_namespaced_service_account_token(name, namespace, body).status.token)
