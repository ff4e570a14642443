"""The demo: what kaiops does, end to end, on the local sandbox. ``make demo`` runs it via ``kaiops demo``.

Each section is one flow or task call; its summary lands in ``demo-out/summary.json``.
"""

from __future__ import annotations

import os

from prefect import flow

from tasks import platform


@flow(name="demo", log_prints=True)
def demo() -> dict:
    """Run every demo section on the platform described by the environment; return the summary.

    Returns:
        ``{"platform": {...}, ...}``: one entry per section; each has ``ok`` (bool).
    """
    summary: dict[str, dict] = {}
    kubernetes = platform.check_kubernetes()
    summary["platform"] = {
        "kubernetes": kubernetes,
        "s3": platform.check_s3(os.environ.get("AWS_ENDPOINT_URL")),
        "prometheus": platform.check_prometheus(os.environ["PROMETHEUS_URL"]),
        "ray": platform.check_ray(os.environ["RAY_ADDRESS"]),
    }
    summary["platform"]["ok"] = (
        kubernetes["crds_established"] == kubernetes["crds_expected"]
        and summary["platform"]["ray"]["status"] == "SUCCEEDED"
    )
    return summary
