"""Prometheus (Debian package), scraping sandbox targets listed as files in ``prometheus/targets/``.

Other sandbox parts add a target by writing ``<name>.json`` there (file-based service discovery, re-read
every 5 s and on change), so a new model-server revision is scraped within one scrape interval (2 s).

Job ``kubelet-cadvisor`` scrapes each Node's kubelet API at ``/metrics/cadvisor`` over HTTPS (the instance CA,
client certificate ``system:prometheus``), as a cluster's Prometheus scrapes the kubelet's cAdvisor endpoint:
the node agent writes one ``targets/kubelet/<node>.json`` per Node (``<InternalIP>:<kubelet port>``, label
``node``), so the per-container ``container_cpu_usage_seconds_total`` / ``container_memory_working_set_bytes``
series carry ``namespace``, ``pod`` and ``container`` as on a cluster.
"""

from __future__ import annotations

import shutil

import yaml

from sandbox.pki import ensure_pki
from sandbox.services.base import Launch, Service, http_ok
from sandbox.state import SandboxState, ServiceRecord

SCRAPE_INTERVAL = "2s"  # a 10 s canary look then sees ~5 samples (real clusters: 15-30 s, looks of minutes)


class Prometheus(Service):
    name = "prometheus"
    ready_timeout = 60.0

    def launch(self, state: SandboxState) -> Launch:
        exe = shutil.which("prometheus")
        if exe is None:
            raise FileNotFoundError("prometheus not on PATH; run `make setup` (installs the Debian package)")
        home = self.data_dir(state)
        targets = home / "targets"
        # A fresh sandbox starts empty (no series, no targets of dead processes); a restart inside a running
        # sandbox keeps its series.
        if state.fresh or self.name not in state.previous_ports:
            shutil.rmtree(home / "tsdb", ignore_errors=True)
            if state.fresh:
                shutil.rmtree(targets, ignore_errors=True)
        targets.mkdir(exist_ok=True)
        (targets / "kubelet").mkdir(exist_ok=True)
        pki = ensure_pki(state.dir / "pki")  # Prometheus may start before the apiserver
        port = self.port(state, "http")
        config = {
            "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
            "scrape_configs": [
                {"job_name": "prometheus", "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]},
                {
                    "job_name": "sandbox",
                    "file_sd_configs": [{"files": [str(targets / "*.json")], "refresh_interval": "5s"}],
                },
                {
                    "job_name": "kubelet-cadvisor",
                    "scheme": "https",
                    "metrics_path": "/metrics/cadvisor",
                    "honor_labels": True,
                    "tls_config": {"ca_file": str(pki.ca_cert), "cert_file": str(pki.client_cert("prometheus")),
                                   "key_file": str(pki.client_key("prometheus"))},
                    "file_sd_configs": [{"files": [str(targets / "kubelet" / "*.json")], "refresh_interval": "5s"}],
                },
            ],
        }
        (home / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        cmd = [
            exe,
            f"--config.file={home / 'prometheus.yml'}",
            f"--storage.tsdb.path={home / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
            "--web.enable-admin-api",
            "--log.level=warn",
        ]
        return Launch(cmd=cmd, url=f"http://127.0.0.1:{port}", ports={"http": port})

    def healthy(self, state: SandboxState, record: ServiceRecord) -> bool:
        return http_ok(f"{record.url}/-/ready")

    def env(self, state: SandboxState, record: ServiceRecord) -> dict[str, str]:
        return {"PROMETHEUS_URL": record.url}
