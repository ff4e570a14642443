"""A real Prometheus over a promtool backfill, for tests of queries against known series (no scraping)."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx


@contextlib.contextmanager
def backfilled_prometheus(home: Path, openmetrics: str) -> Iterator[str]:
    """Write ``openmetrics`` (ending ``# EOF``) as TSDB blocks under ``home`` with ``promtool tsdb
    create-blocks-from openmetrics``, start ``prometheus`` on a free loopback port over them, and yield its URL
    once ``/-/ready`` answers; the process is stopped on exit."""
    from sandbox.procs import free_port

    (home / "series.om").write_text(openmetrics)
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(home / "series.om"),
                    str(home / "tsdb")], check=True, capture_output=True)
    (home / "prometheus.yml").write_text("global: {scrape_interval: 5s}\n")
    port = free_port()
    proc = subprocess.Popen(
        ["prometheus", f"--config.file={home / 'prometheus.yml'}", f"--storage.tsdb.path={home / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn", "--storage.tsdb.retention.time=30d"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
