"""Certificates and keys for the sandbox control plane, generated once per instance with ``cryptography``:

- a cluster CA; the apiserver's serving certificate (127.0.0.1, ``kubernetes.default.svc[.cluster.local]``,
  the ``kubernetes`` Service IP 10.96.0.1 and the node network's host-side address when there is one);
- client certificates for the admin (group ``system:masters``) and each control-plane component under the
  user names Kubernetes' bootstrap RBAC binds (``system:kube-controller-manager``, ``system:kube-scheduler``,
  ``system:kube-proxy``) plus ``system:metrics-server`` and ``system:prometheus`` (towards the node agent's
  kubelet API);
- a separate front-proxy CA and its ``front-proxy-client`` certificate: the aggregation layer's identity when
  the apiserver proxies to an aggregated API (metrics.k8s.io), as kubeadm sets it up;
- the service-account signing key pair.

Each file is created only when missing, so an instance created by an older kaiops gains the new files without
losing its CA. Never committed, never printed.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KUBERNETES_SERVICE_IP = "10.96.0.1"  # first address of --service-cluster-ip-range 10.96.0.0/16
SERVING_DNS = ("localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
               "kubernetes.default.svc.cluster.local")
# component -> (user name, groups) of its client certificate; the names bootstrap RBAC binds roles to
COMPONENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "admin": ("kaiops-admin", ("system:masters",)),
    "controller-manager": ("system:kube-controller-manager", ()),
    "scheduler": ("system:kube-scheduler", ()),
    "kube-proxy": ("system:kube-proxy", ()),
    "metrics-server": ("system:metrics-server", ()),
    "prometheus": ("system:prometheus", ()),  # scrapes the kubelet API's /metrics/cadvisor
    # the apiserver's identity towards the kubelet API (logs, exec), kubeadm's name
    "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", ()),
}


@dataclass(frozen=True)
class Pki:
    """Paths of the PEM files in one sandbox instance's ``pki/`` directory."""

    dir: Path

    ca_cert = property(lambda self: self.dir / "ca.crt")
    ca_key = property(lambda self: self.dir / "ca.key")
    serving_cert = property(lambda self: self.dir / "apiserver.crt")
    serving_key = property(lambda self: self.dir / "apiserver.key")
    admin_cert = property(lambda self: self.dir / "admin.crt")
    admin_key = property(lambda self: self.dir / "admin.key")
    sa_key = property(lambda self: self.dir / "sa.key")
    sa_pub = property(lambda self: self.dir / "sa.pub")
    front_proxy_ca_cert = property(lambda self: self.dir / "front-proxy-ca.crt")
    front_proxy_ca_key = property(lambda self: self.dir / "front-proxy-ca.key")
    front_proxy_client_cert = property(lambda self: self.dir / "front-proxy-client.crt")
    front_proxy_client_key = property(lambda self: self.dir / "front-proxy-client.key")

    def client_cert(self, component: str) -> Path:
        """Client certificate of ``component`` (a key of :data:`COMPONENTS`)."""
        return self.dir / f"{component}.crt"

    def client_key(self, component: str) -> Path:
        """Private key of ``component``'s client certificate."""
        return self.dir / f"{component}.key"


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)


def _load_key(path: Path):
    return serialization.load_pem_private_key(path.read_bytes(), password=None)


def _cert(subject: x509.Name, key, issuer: x509.Name, issuer_key, *, ca: bool, usage=None, sans=None):
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
            decipher_only=False), critical=True)
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _ensure_ca(cert_path: Path, key_path: Path, common_name: str):
    """Load the CA at the paths, creating it when missing; return (name, key)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        return cert.subject, _load_key(key_path)
    key = _key()
    _write_key(key_path, key)
    cert_path.write_bytes(_cert(name, key, name, key, ca=True).public_bytes(serialization.Encoding.PEM))
    return name, key


def _ensure_client(cert_path: Path, key_path: Path, user: str, groups: tuple[str, ...], ca_name, ca_key) -> None:
    if cert_path.exists() and key_path.exists():
        return
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, user)]
                        + [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups])
    cert = _cert(subject, key, ca_name, ca_key, ca=False, usage=[ExtendedKeyUsageOID.CLIENT_AUTH])
    _write_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def serving_ips(cert_path: Path) -> set[str]:
    """The IP addresses in the subjectAltName of the PEM certificate at ``cert_path`` (empty when missing)."""
    if not cert_path.exists():
        return set()
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}


def ensure_pki(directory: Path, extra_ips: tuple[str, ...] = ()) -> Pki:
    """Create whatever of the CA, certificates and keys under ``directory`` is missing; return their paths.

    Args:
        directory: the instance's ``pki/`` directory (created when missing).
        extra_ips: more IP addresses the apiserver's serving certificate must carry (the node network's
            host-side address); the serving certificate is re-issued by the same CA when one is missing.
    """
    pki = Pki(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ca_name, ca_key = _ensure_ca(pki.ca_cert, pki.ca_key, "kaiops-sandbox-ca")

    ips = ["127.0.0.1", KUBERNETES_SERVICE_IP, *extra_ips]
    if not (pki.serving_key.exists() and set(ips) <= serving_ips(pki.serving_cert)):
        serving_key = _key()
        sans = [x509.DNSName(d) for d in SERVING_DNS] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        serving = _cert(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]),
            serving_key, ca_name, ca_key, ca=False, usage=[ExtendedKeyUsageOID.SERVER_AUTH], sans=sans,
        )
        _write_key(pki.serving_key, serving_key)
        pki.serving_cert.write_bytes(serving.public_bytes(serialization.Encoding.PEM))

    for component, (user, groups) in COMPONENTS.items():
        _ensure_client(pki.client_cert(component), pki.client_key(component), user, groups, ca_name, ca_key)

    fp_name, fp_key = _ensure_ca(pki.front_proxy_ca_cert, pki.front_proxy_ca_key, "kaiops-sandbox-front-proxy-ca")
    _ensure_client(pki.front_proxy_client_cert, pki.front_proxy_client_key, "front-proxy-client", (),
                   fp_name, fp_key)

    if not (pki.sa_key.exists() and pki.sa_pub.exists()):
        sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write_key(pki.sa_key, sa_key)
        pki.sa_pub.write_bytes(
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    return pki


def issue_serving_cert(pki: Pki, cert_path: Path, key_path: Path, common_name: str, dns_names: tuple[str, ...],
                       ips: tuple[str, ...] = ()) -> tuple[Path, Path]:
    """A TLS serving certificate signed by the instance CA for ``dns_names`` and ``ips`` (both in the SAN).

    Re-issued when missing or when a wanted DNS name or IP is not in the existing one; otherwise left as it is.

    Returns:
        ``(cert_path, key_path)`` (PEM; the key is mode 0600).
    """
    wanted_dns, wanted_ips = set(dns_names), set(ips)
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        try:
            sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            have_dns = set(sans.get_values_for_type(x509.DNSName))
            have_ips = {str(i) for i in sans.get_values_for_type(x509.IPAddress)}
        except x509.ExtensionNotFound:
            have_dns, have_ips = set(), set()
        if wanted_dns <= have_dns and wanted_ips <= have_ips:
            return cert_path, key_path
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    ca_key = _load_key(pki.ca_key)
    key = _key()
    sans = [x509.DNSName(d) for d in dns_names] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = _cert(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]), key, ca_cert.subject, ca_key,
                 ca=False, usage=[ExtendedKeyUsageOID.SERVER_AUTH], sans=sans)
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    _write_key(key_path, key)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path
