"""The end-of-rollout report: a matplotlib PNG per metric (canary vs baseline per look), a markdown report
and a JSON summary, written to an output directory. Pure file output; no Prefect, no cluster."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tasks.rollout.state import RolloutRecord


def plot_metric(record: RolloutRecord, metric: str, path: Path) -> Path:
    """Draw canary and baseline values of ``metric`` at each look, with the step's traffic; return ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    looks = [h for h in record.history if metric in h.metrics]
    xs = [h.look for h in looks]
    canary = [h.metrics[metric].get("canary") for h in looks]
    baseline = [h.metrics[metric].get("baseline") for h in looks]
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
    ax.plot(xs, [float("nan") if v is None else v for v in canary], "o-", color="tab:orange", label="canary")
    ax.plot(xs, [float("nan") if v is None else v for v in baseline], "s--", color="tab:blue", label="baseline")
    for h in looks:
        verdict = h.metrics[metric].get("verdict", "")
        ax.annotate(f"{h.traffic}%\n{verdict}", (h.look, 0), xycoords=("data", "axes fraction"),
                    textcoords="offset points", xytext=(0, 4), ha="center", fontsize=7)
    ax.set_xlabel("look (traffic % and verdict below)")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric}: canary vs baseline")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_xticks(xs)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def summary(record: RolloutRecord, namespace: str, name: str) -> dict[str, Any]:
    """The JSON summary of a rollout."""
    return {
        "inferenceservice": f"{namespace}/{name}",
        "phase": record.phase.value,
        "mode": record.mode,
        "target_storage_uri": record.target_storage_uri,
        "previous_storage_uri": record.previous_storage_uri,
        "canary_revision": record.canary_revision,
        "previous_revision": record.previous_revision,
        "final_step": record.step,
        "final_traffic": record.traffic,
        "message": record.message,
        "looks": [h.model_dump(mode="json") for h in record.history],
    }


def write_report(record: RolloutRecord, namespace: str, name: str, out_dir: Path) -> dict[str, Path]:
    """Write ``<out_dir>/<name>-<phase>/`` with report.md, summary.json and one PNG per metric.

    Returns:
        paths by role: ``markdown``, ``json`` and ``plot:<metric>``.
    """
    out = out_dir / f"{name}-rollout"
    out.mkdir(parents=True, exist_ok=True)
    metrics = sorted({m for h in record.history for m in h.metrics})
    paths: dict[str, Path] = {}
    for metric in metrics:
        paths[f"plot:{metric}"] = plot_metric(record, metric, out / f"{metric}.png")
    data = summary(record, namespace, name)
    (out / "summary.json").write_text(json.dumps(data, indent=2))
    paths["json"] = out / "summary.json"
    lines = [
        f"# Rollout of {namespace}/{name}: {record.phase.value}",
        "",
        f"- model: `{record.previous_storage_uri}` -> `{record.target_storage_uri}`",
        f"- revisions: baseline `{record.previous_revision}`, canary `{record.canary_revision}`",
        f"- mode: {record.mode}; last step {record.step} at {record.traffic} % canary traffic",
        f"- outcome: {record.message}",
        "",
        "| look | traffic % | decision | score | reason |",
        "|---:|---:|---|---:|---|",
    ]
    for h in record.history:
        score = "" if h.score is None else f"{h.score:.2f}"
        lines.append(f"| {h.look} | {h.traffic} | {h.decision.value} | {score} | {h.reason.replace('|', '/')} |")
    lines.append("")
    for metric in metrics:
        lines += [f"## {metric}", "", f"![{metric}]({metric}.png)", ""]
    (out / "report.md").write_text("\n".join(lines))
    paths["markdown"] = out / "report.md"
    return paths
