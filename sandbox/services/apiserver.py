"""kube-apiserver built from k8s.io/kubernetes: TLS, client-certificate authentication, RBAC,
service-account token signing. After it is healthy the pinned CRDs are installed and waited for.

No controller-manager runs: namespaces stay Terminating after delete and nothing is garbage-collected,
and no ``default`` ServiceAccount appears in new namespaces (create ServiceAccounts explicitly).
"""

from __future__ import annotations

import base64
import ssl

import yaml

from sandbox.paths import binary
from sandbox.pki import Pki, ensure_pki
from sandbox.services.base import Launch, Service, http_ok
from sandbox.state import SandboxState, ServiceRecord

SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
CONTEXT = "kaiops-sandbox"


class KubeApiserver(Service):
    name = "kube-apiserver"
    needs = ("etcd",)
    ready_timeout = 120.0

    def launch(self, state: SandboxState) -> Launch:
        pki = ensure_pki(state.dir / "pki")
        port = self.port(state, "https")
        url = f"https://127.0.0.1:{port}"
        etcd = state.services["etcd"].url
        cmd = [
            str(binary("kube-apiserver")),
            f"--etcd-servers={etcd}",
            f"--secure-port={port}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--cert-dir={self.data_dir(state)}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--disable-admission-plugins=ServiceAccount",
            "--allow-privileged=true",
            "--endpoint-reconciler-type=none",
            "--v=0",
        ]
        return Launch(cmd=cmd, url=url, ports={"https": port})

    def _ssl(self, state: SandboxState) -> ssl.SSLContext:
        pki = Pki(state.dir / "pki")
        ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
        ctx.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
        return ctx

    def healthy(self, state: SandboxState, record: ServiceRecord) -> bool:
        return http_ok(f"{record.url}/readyz", context=self._ssl(state))

    def after_ready(self, state: SandboxState, record: ServiceRecord) -> None:
        from sandbox import crd_install  # imports the kubernetes client: only when needed

        write_kubeconfig(state, record.url)
        crd_install.install_crds(str(state.kubeconfig))

    def env(self, state: SandboxState, record: ServiceRecord) -> dict[str, str]:
        return {"KUBECONFIG": str(state.kubeconfig)}


def write_kubeconfig(state: SandboxState, server: str) -> None:
    """Write the instance's kubeconfig: context ``kaiops-sandbox``, admin client certificate (mode 0600)."""
    pki = Pki(state.dir / "pki")

    def b64(path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {"server": server, "certificate-authority-data": b64(pki.ca_cert)}}],
        "users": [{"name": "kaiops-admin", "user": {
            "client-certificate-data": b64(pki.admin_cert), "client-key-data": b64(pki.admin_key)}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": "kaiops-admin"}}],
        "current-context": CONTEXT,
    }
    tmp = state.kubeconfig.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    tmp.chmod(0o600)
    tmp.replace(state.kubeconfig)
