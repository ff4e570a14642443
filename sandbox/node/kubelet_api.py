"""The node agent's kubelet API (HTTPS on ``<host_ip>:<port>``, the Node's ``daemonEndpoints`` port).

Served paths (as the kubelet's ``pkg/kubelet/server``):
- ``/containerLogs/{ns}/{pod}/{container}`` with ``previous``, ``follow``, ``tailLines``, ``limitBytes``
  (``kubectl logs [--previous] [-f]`` through the apiserver's pods/log proxy);
- ``/metrics/resource`` (what metrics-server reads: ``node_*``, ``pod_*``, ``container_cpu_usage_seconds_total``,
  ``container_memory_working_set_bytes``, ``container_start_time_seconds``), ``/metrics/cadvisor`` (the
  cAdvisor names Prometheus alerts query, labels ``namespace``, ``pod``, ``container``), ``/healthz``.
Values come from ``/proc`` of each container's process session (CPU = utime+stime; working set = RSS).
Clients must present a certificate signed by the sandbox CA (the apiserver's kubelet client certificate,
metrics-server's); there is no further authorization. ``exec``/``attach``/``portforward`` are not served.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sandbox import pki as sandbox_pki


def serving_cert(agent: Any) -> tuple[Path, Path, Path]:
    """(cert, key, CA) paths of the kubelet serving certificate, issued by the instance CA when missing."""
    p = sandbox_pki.ensure_pki(agent.instance_dir / "pki")
    cert, key = agent.state_dir / "kubelet.crt", agent.state_dir / "kubelet.key"
    if not (cert.exists() and key.exists()):
        ca_cert = x509.load_pem_x509_certificate(p.ca_cert.read_bytes())
        ca_key = serialization.load_pem_private_key(p.ca_key.read_bytes(), password=None)
        k = sandbox_pki._key()
        sans = [x509.IPAddress(ipaddress.ip_address(agent.addresses.host_ip)),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))] + [x509.DNSName(n["name"]) for n in agent.nodes]
        c = sandbox_pki._cert(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kaiops-sandbox-kubelet")]), k,
                              ca_cert.subject, ca_key, ca=False, usage=[ExtendedKeyUsageOID.SERVER_AUTH], sans=sans)
        sandbox_pki._write_key(key, k)
        cert.write_bytes(c.public_bytes(serialization.Encoding.PEM))
    return cert, key, p.ca_cert


def _labels(**kv: str) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in kv.items()) + "}"


def resource_metrics(agent: Any, cadvisor: bool) -> str:
    """Prometheus text of the running containers' CPU and memory (``/metrics/resource`` or ``/cadvisor``)."""
    ts = int(time.time() * 1000)
    boot = time.time() - time.monotonic()
    lines: list[str] = []
    node_cpu = node_mem = 0.0
    rows = []
    with agent.lock:
        workers = list(agent.workers.values())
    for w in workers:
        for name, cpu, mem, started in w.usage():
            rows.append((w, name, cpu, mem, boot + started))
            node_cpu += cpu
            node_mem += mem
    if cadvisor:
        lines += ["# HELP container_cpu_usage_seconds_total Cumulative cpu time consumed in seconds.",
                  "# TYPE container_cpu_usage_seconds_total counter"]
        for w, name, cpu, _, _ in rows:
            image = next((c.spec.get("image", "") for c in w.ctrs if c.name == name), "")
            labels = _labels(container=name, cpu="total", id=f"/kaiops/{w.uid}/{name}", image=image, name=name,
                             namespace=w.ns, pod=w.name_)
            lines.append(f"container_cpu_usage_seconds_total{labels} {cpu:.6f} {ts}")
        lines += ["# HELP container_memory_working_set_bytes Current working set in bytes.",
                  "# TYPE container_memory_working_set_bytes gauge"]
        for w, name, _, mem, _ in rows:
            labels = _labels(container=name, id=f"/kaiops/{w.uid}/{name}", name=name, namespace=w.ns, pod=w.name_)
            lines.append(f"container_memory_working_set_bytes{labels} {mem} {ts}")
        lines += ["# HELP container_memory_rss Size of RSS in bytes.", "# TYPE container_memory_rss gauge"]
        for w, name, _, mem, _ in rows:
            lines.append(f"container_memory_rss{_labels(container=name, namespace=w.ns, pod=w.name_)} {mem} {ts}")
        return "\n".join(lines) + "\n"
    lines += ["# HELP node_cpu_usage_seconds_total Cumulative cpu time consumed by the node in core-seconds",
              "# TYPE node_cpu_usage_seconds_total counter"]
    cpu_total = sum(float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:4]) / 100.0
    lines.append(f"node_cpu_usage_seconds_total {cpu_total:.6f} {ts}")
    mem_info = {ln.split(":")[0]: int(ln.split()[1]) * 1024 for ln in Path("/proc/meminfo").read_text().splitlines()}
    lines += ["# HELP node_memory_working_set_bytes Current working set of the node in bytes",
              "# TYPE node_memory_working_set_bytes gauge",
              f"node_memory_working_set_bytes {mem_info['MemTotal'] - mem_info['MemAvailable']} {ts}"]
    lines += ["# HELP container_cpu_usage_seconds_total Cumulative cpu time consumed by the container in core-seconds",
              "# TYPE container_cpu_usage_seconds_total counter"]
    lines += [f"container_cpu_usage_seconds_total{_labels(container=n, namespace=w.ns, pod=w.name_)} {cpu:.6f} {ts}"
              for w, n, cpu, _, _ in rows]
    lines += ["# HELP container_memory_working_set_bytes Current working set of the container in bytes",
              "# TYPE container_memory_working_set_bytes gauge"]
    lines += [f"container_memory_working_set_bytes{_labels(container=n, namespace=w.ns, pod=w.name_)} {mem} {ts}"
              for w, n, _, mem, _ in rows]
    lines += ["# HELP container_start_time_seconds Start time of the container since unix epoch in seconds",
              "# TYPE container_start_time_seconds gauge"]
    lines += [f"container_start_time_seconds{_labels(container=n, namespace=w.ns, pod=w.name_)} {st:.3f} {ts}"
              for w, n, _, _, st in rows]
    pods: dict[tuple[str, str], list[float]] = {}
    for w, _, cpu, mem, _ in rows:
        acc = pods.setdefault((w.ns, w.name_), [0.0, 0.0])
        acc[0] += cpu
        acc[1] += mem
    lines += ["# HELP pod_cpu_usage_seconds_total Cumulative cpu time consumed by the pod in core-seconds",
              "# TYPE pod_cpu_usage_seconds_total counter"]
    lines += [f"pod_cpu_usage_seconds_total{_labels(namespace=ns, pod=p)} {v[0]:.6f} {ts}"
              for (ns, p), v in pods.items()]
    lines += ["# HELP pod_memory_working_set_bytes Current working set of the pod in bytes",
              "# TYPE pod_memory_working_set_bytes gauge"]
    lines += [f"pod_memory_working_set_bytes{_labels(namespace=ns, pod=p)} {int(v[1])} {ts}"
              for (ns, p), v in pods.items()]
    lines += ["# HELP scrape_error 1 if there was an error while getting container metrics, 0 otherwise",
              "# TYPE scrape_error gauge", "scrape_error 0"]
    return "\n".join(lines) + "\n"


def _find_logs(agent: Any, ns: str, pod: str, container: str, previous: bool) -> Path | None:
    with agent.lock:
        workers = [w for w in agent.workers.values() if w.ns == ns and w.name_ == pod]
    for w in workers:
        c = next((c for c in w.ctrs if c.name == container), None)
        if c is None:
            return None
        restart = c.restart_count - 1 if previous else c.restart_count
        if restart < 0:
            return None
        return w.log_path(container, restart)
    return None


def serve(agent: Any) -> int:
    """Start the kubelet API in a daemon thread on ``host_ip`` (free port); return the port."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _send(self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urllib.parse.urlparse(self.path)
            q = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
            parts = [p for p in url.path.split("/") if p]
            if url.path == "/healthz":
                return self._send(200, b"ok")
            if url.path in ("/metrics/resource", "/metrics/resource/v1alpha1"):
                return self._send(200, resource_metrics(agent, False).encode(), "text/plain; version=0.0.4")
            if url.path == "/metrics/cadvisor":
                return self._send(200, resource_metrics(agent, True).encode(), "text/plain; version=0.0.4")
            if url.path == "/metrics":
                return self._send(200, b"# kaiops sandbox node agent\nkubelet_running_pods %d\n" % len(agent.workers),
                                  "text/plain; version=0.0.4")
            if len(parts) == 4 and parts[0] == "containerLogs":
                return self._logs(parts[1], parts[2], parts[3], q)
            return self._send(404, f"{url.path}: not served by the kaiops sandbox node agent\n".encode())

        def _logs(self, ns: str, pod: str, container: str, q: dict[str, str]) -> None:
            previous = q.get("previous") in ("true", "1")
            path = _find_logs(agent, ns, pod, container, previous)
            if path is None or not path.exists():
                what = "previous terminated container" if previous else "container"
                return self._send(400, f'{what} "{container}" in pod "{pod}" not found\n'.encode())
            data = path.read_bytes()
            if "tailLines" in q:
                lines = data.splitlines(keepends=True)
                data = b"".join(lines[-int(q["tailLines"]):]) if int(q["tailLines"]) > 0 else b""
            if "limitBytes" in q:
                data = data[: int(q["limitBytes"])]
            if q.get("follow") not in ("true", "1"):
                return self._send(200, data)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()

            def chunk(b: bytes) -> None:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(b), b))
                self.wfile.flush()

            if data:
                chunk(data)
            offset = path.stat().st_size
            try:
                while True:
                    time.sleep(0.5)
                    size = path.stat().st_size
                    if size > offset:
                        with open(path, "rb") as f:
                            f.seek(offset)
                            chunk(f.read(size - offset))
                        offset = size
                    if _find_logs(agent, ns, pod, container, False) != path:
                        break  # container restarted or pod gone: the stream ends, as with the kubelet
                chunk(b"")
            except (BrokenPipeError, ConnectionResetError):
                pass

    cert, key, ca = serving_cert(agent)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    ctx.load_verify_locations(str(ca))
    ctx.verify_mode = ssl.CERT_REQUIRED
    server = ThreadingHTTPServer((agent.addresses.host_ip, 0), Handler)
    server.daemon_threads = True
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True, name="kubelet-api").start()
    _ = dt  # (timestamps are unix ms)
    return server.server_address[1]
