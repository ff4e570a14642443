"""Pure parts of the sandbox control plane: certificates, kube-proxy's configuration, the Corefile, the
status listing. No process is started."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from flows.commands.sandbox import emit_status
from flows.output import OutputFormat
from sandbox.pki import COMPONENTS, Pki, ensure_pki, serving_ips
from sandbox.services.coredns import corefile, dns_objects
from sandbox.services.kube_proxy import proxy_config

pytestmark = pytest.mark.unit


def _subject(path: Path) -> tuple[str, list[str]]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    return cn, [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]


def test_pki_issues_component_identities_and_reissues_serving_cert_for_new_ips(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path / "pki")
    assert serving_ips(pki.serving_cert) == {"127.0.0.1", "10.96.0.1"}
    for component, (user, groups) in COMPONENTS.items():
        assert _subject(pki.client_cert(component)) == (user, list(groups))
    assert _subject(pki.front_proxy_client_cert)[0] == "front-proxy-client"
    ca_before, admin_before = pki.ca_cert.read_bytes(), pki.admin_cert.read_bytes()

    again = ensure_pki(tmp_path / "pki", extra_ips=("10.200.7.1",))
    assert serving_ips(again.serving_cert) == {"127.0.0.1", "10.96.0.1", "10.200.7.1"}
    # same CA and client certificates: kubeconfigs written before stay valid
    assert again.ca_cert.read_bytes() == ca_before and again.admin_cert.read_bytes() == admin_before


def test_pki_adds_missing_files_to_an_older_instance(tmp_path: Path) -> None:
    pki = ensure_pki(tmp_path / "pki")
    pki.client_cert("kube-proxy").unlink()
    Pki(tmp_path / "pki").front_proxy_ca_cert.unlink()
    ensure_pki(tmp_path / "pki")
    assert pki.client_cert("kube-proxy").exists() and pki.front_proxy_ca_cert.exists()


def test_kube_proxy_writes_no_conntrack_sysctl() -> None:
    config = proxy_config("/k", "sandbox-node", "10.101.0.0/16", "10.200.1.2")
    assert config["mode"] == "nftables" and config["hostnameOverride"] == "sandbox-node"
    conntrack = config["conntrack"]
    # zero = "leave the kernel's value" (cmd/kube-proxy/app/server_linux.go setupConntrack)
    assert conntrack["maxPerCore"] == 0 and conntrack["min"] == 0
    assert {conntrack[k] for k in ("tcpEstablishedTimeout", "tcpCloseWaitTimeout", "udpTimeout",
                                   "udpStreamTimeout")} == {"0s"}
    assert config["oomScoreAdj"] == 0


def test_corefile_answers_cluster_local_only() -> None:
    text = corefile("/kc", "10.101.0.1", "10.200.1.2")
    assert "forward" not in text
    assert "kubernetes cluster.local in-addr.arpa ip6.arpa" in text
    assert "rcode NXDOMAIN" in text
    service = next(o for o in dns_objects("10.101.0.1", "10.96.0.10") if o["kind"] == "Service")
    assert service["spec"]["clusterIP"] == "10.96.0.10" and "selector" not in service["spec"]


def test_status_is_a_list_when_the_table_is_too_wide(capsys) -> None:
    long_log = "/root/.cache/kaiops/sandbox/a-long-instance-name/logs/kube-controller-manager.log"
    rows = [{"name": "kube-controller-manager", "state": "healthy", "url": "https://127.0.0.1:40000",
             "pid": 123, "log": long_log}]
    emit_status(rows, OutputFormat.table)
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "kube-controller-manager: healthy"
    assert f"  log: {long_log}" in out.splitlines()  # never cut


def test_status_is_a_table_when_it_fits(capsys) -> None:
    emit_status([{"name": "etcd", "state": "stopped", "url": "", "pid": None, "log": ""}], OutputFormat.table)
    out = capsys.readouterr().out
    assert "┃ name" in out and "etcd" in out
