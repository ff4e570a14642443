"""Redis (Debian ``redis-server``) for KubeRay's GCS fault tolerance (``spec.gcsFaultToleranceOptions``).

Binds 127.0.0.1 on a free port with a random password per instance (``requirepass``, in a mode-0600 config
file, never on the command line) and no persistence (``save ""``, no AOF): the head-failure drill needs the
GCS tables to outlive the head Pod, not the sandbox. Pods reach it as
``redis.kaiops-sandbox.svc.cluster.local:6379`` (the node agent's selector-less Service and the ``net``
forwarder on the host side of the veth). ``kaiops sandbox env`` exports ``KAIOPS_REDIS_ADDRESS`` (that
in-cluster address) and ``KAIOPS_REDIS_PASSWORD``.
"""

from __future__ import annotations

import secrets
import shutil
import socket

from sandbox.services.base import Launch, Service
from sandbox.state import SandboxState, ServiceRecord

IN_CLUSTER_ADDRESS = "redis.kaiops-sandbox.svc.cluster.local:6379"


def _config(port: int, password: str, data_dir: str) -> str:
    return "\n".join([
        "bind 127.0.0.1", f"port {port}", "protected-mode yes", f'requirepass "{password}"',
        f'dir "{data_dir}"', 'save ""', "appendonly no", "daemonize no", 'logfile ""', "",
    ])


def ping(port: int, password: str, timeout: float = 2.0) -> bool:
    """True when Redis on 127.0.0.1:``port`` accepts ``password`` and answers PING (RESP, no client library)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(f"AUTH {password}\r\nPING\r\n".encode())
            reply = b""
            while b"+PONG" not in reply and len(reply) < 4096:
                chunk = sock.recv(1024)
                if not chunk:
                    break
                reply += chunk
            return reply.startswith(b"+OK") and b"+PONG" in reply
    except OSError:
        return False


class Redis(Service):
    name = "redis"
    ready_timeout = 30.0

    def launch(self, state: SandboxState) -> Launch:
        server = shutil.which("redis-server")
        if server is None:
            raise RuntimeError("redis-server is not installed (Debian package redis-server: make setup installs it)")
        port = self.port(state, "redis")
        password = state.secrets.setdefault("redis_password", secrets.token_hex(16))
        data = self.data_dir(state)
        conf = data / "redis.conf"
        conf.write_text(_config(port, password, str(data)))
        conf.chmod(0o600)
        return Launch(cmd=[server, str(conf)], url=f"redis://127.0.0.1:{port}", ports={"redis": port})

    def healthy(self, state: SandboxState, record: ServiceRecord) -> bool:
        return ping(record.ports["redis"], state.secrets.get("redis_password", ""))

    def env(self, state: SandboxState, record: ServiceRecord) -> dict[str, str]:
        return {"KAIOPS_REDIS_ADDRESS": IN_CLUSTER_ADDRESS, "KAIOPS_REDIS_PASSWORD": state.secrets["redis_password"]}
