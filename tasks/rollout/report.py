"""The end-of-rollout report: one figure that explains the decision, a markdown report and a JSON summary,
written to an output directory. Pure file output; no Prefect, no cluster.

The figure (``rollout.png``), read top to bottom: canary traffic per look (%, with the canary requests
analysed and the look's decision above each bar), then one panel per metric with the canary's and the
baseline's estimates and their anytime-valid confidence bands at each look (ratio metrics; latency has point
values, see :mod:`tasks.analysis.thresholds`), the bound in force as a line, and the canary's verdict per
look as its marker (green pass, red fail, grey inconclusive). The look that decided is shaded; the title
says what happened. Units: ratio metrics in %, latency in ms.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from tasks.rollout.state import LookRecord, Phase, RolloutRecord

VERDICT_COLOURS = {"pass": "#2e7d32", "fail": "#c62828", "inconclusive": "#9e9e9e"}
DECISION_COLOURS = {"advance": "#2e7d32", "promote": "#2e7d32", "hold": "#757575", "rollback": "#c62828",
                    "pause_for_human": "#ef6c00"}
CANARY, BASELINE, BOUND = "#e65100", "#1565c0", "#6a1b9a"


def _scale(kind: str) -> tuple[float, str]:
    """Display factor and unit: ratio metrics (fractions) in %, latency (seconds) in ms."""
    return (100.0, "%") if kind == "ratio" else (1000.0, "ms")


def _num(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else float("nan")


def _deciding_look(record: RolloutRecord) -> LookRecord | None:
    """The look whose decision ended the rollout (rollback / promote), else the last look."""
    for look in reversed(record.history):
        if look.decision.value in ("rollback", "promote"):
            return look
    return record.history[-1] if record.history else None


def headline(record: RolloutRecord, namespace: str, name: str, sep: str = " ") -> str:
    """One line (``sep`` between what and why): what happened to the rollout, at which look and traffic, and
    which metrics failed."""
    look = _deciding_look(record)
    what = {Phase.SUCCEEDED: "PROMOTED", Phase.ROLLED_BACK: "ROLLED BACK"}.get(record.phase, record.phase.value)
    where = f"after look {look.look} at {look.traffic} % canary traffic" if look else "before any look"
    failed = [m for m, row in (look.metrics if look else {}).items() if row.get("verdict") == "fail"]
    why = f": {', '.join(sorted(failed))} failed" if failed and record.phase is not Phase.SUCCEEDED else ""
    return f"{namespace}/{name}: {what}{sep}{where}{why}"


def _metric_note(metric: str, row: dict[str, Any], scale: float, unit: str) -> str:
    """Why this metric passed or failed at the deciding look, in a few words."""
    verdict = row.get("verdict", "")
    e, threshold = row.get("e_value"), row.get("e_threshold")
    notes = [verdict]
    if isinstance(e, int | float) and isinstance(threshold, int | float):
        notes.append(f"evidence canary worse e={e:.3g} {'≥' if e >= threshold else '<'} {threshold:.3g}")
    bound, canary = row.get("bound"), row.get("canary_low", row.get("canary"))
    if isinstance(bound, int | float) and isinstance(canary, int | float):
        notes.append(f"{'canary CI low' if 'canary_low' in row else 'canary'} {canary * scale:.3g}{unit} "
                     f"{'>' if canary > bound else '≤'} bound {bound * scale:.3g}{unit}")
    return f"{metric}: " + "; ".join(notes)


def plot_rollout(record: RolloutRecord, namespace: str, name: str, path: Path) -> Path:
    """Draw the one-figure explanation of the rollout's decision (see the module docstring); return ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    looks = record.history
    metrics = sorted({m for h in looks for m in h.metrics})
    decided = _deciding_look(record)
    fig, axes = plt.subplots(1 + max(1, len(metrics)), 1, figsize=(8, 2.0 + 2.3 * max(1, len(metrics))), dpi=100,
                             sharex=True, gridspec_kw={"height_ratios": [1.0] + [2.0] * max(1, len(metrics))})
    ok = record.phase is Phase.SUCCEEDED
    fig.suptitle(headline(record, namespace, name, sep="\n"), fontsize=11.5, fontweight="bold",
                 color=VERDICT_COLOURS["pass"] if ok else VERDICT_COLOURS["fail"] if record.phase is
                 Phase.ROLLED_BACK else "black")
    xs = [h.look for h in looks]
    traffic_ax = axes[0]
    if not looks:
        traffic_ax.text(0.5, 0.5, "no look analysed", ha="center", va="center", transform=traffic_ax.transAxes)
    traffic_ax.bar(xs, [h.traffic for h in looks], width=0.6, color="#b0bec5")
    for h in looks:
        requests = max((r.get("requests") or 0 for r in h.metrics.values()), default=0)
        traffic_ax.text(h.look, 138, h.decision.value, ha="center", va="center", fontsize=8.5,
                        fontweight="bold", color=DECISION_COLOURS.get(h.decision.value, "black"))
        traffic_ax.text(h.look, h.traffic + 3, f"{h.traffic}% · {requests} req", ha="center", va="bottom",
                        fontsize=7)
    traffic_ax.set_ylim(0, 160)
    traffic_ax.set_ylabel("canary\ntraffic (%)")
    traffic_ax.set_yticks([0, 50, 100])
    for ax in axes:
        if decided is not None:
            ax.axvspan(decided.look - 0.45, decided.look + 0.45, color="#fff3e0" if not ok else "#e8f5e9",
                       zorder=0)
    for ax, metric in zip(axes[1:], metrics or ["(no metric)"], strict=False):
        rows = [(h.look, h.metrics[metric]) for h in looks if metric in h.metrics]
        kind = next((r.get("kind") for _, r in rows if r.get("kind")), "ratio")
        scale, unit = _scale(kind)
        lx = [x for x, _ in rows]

        def series(key: str, rows: list[tuple[int, dict[str, Any]]] = rows, scale: float = scale) -> list[float]:
            return [_num(r.get(key)) * scale for _, r in rows]

        canary, baseline, bound = series("canary"), series("baseline"), series("bound")
        if kind == "ratio":
            for key, values, xs_off, colour in (("canary", canary, -0.08, CANARY), ("baseline", baseline, 0.08,
                                                                                     BASELINE)):
                low, high = series(f"{key}_low"), series(f"{key}_high")
                err = [[max(0.0, v - lo) for v, lo in zip(values, low, strict=True)],
                       [max(0.0, hi - v) for v, hi in zip(values, high, strict=True)]]
                ax.errorbar([x + xs_off for x in lx], values, yerr=err, fmt="none", ecolor=colour, elinewidth=6,
                            alpha=0.25, capsize=0)
        ax.plot([x + 0.08 for x in lx], baseline, "s--", color=BASELINE, markersize=5, label="baseline")
        ax.plot([x - 0.08 for x in lx], canary, "-", color=CANARY, label="canary")
        ax.scatter([x - 0.08 for x in lx], canary, s=45, zorder=3, edgecolors=CANARY, linewidths=1.2,
                   c=[VERDICT_COLOURS.get(r.get("verdict", ""), "white") for _, r in rows])
        if any(not math.isnan(b) for b in bound):
            ax.hlines(bound, [x - 0.35 for x in lx], [x + 0.35 for x in lx], colors=BOUND, linestyles=":",
                      linewidth=2, label="bound (worst accepted)")
        finite = [v for v in canary + baseline + bound + series("canary_high") + series("baseline_high")
                  if not math.isnan(v)]
        ax.set_ylim(0, (max(finite) * 1.2) if finite and max(finite) > 0 else 1)
        ax.set_ylabel(f"{metric}\n({unit})")
        note = _metric_note(metric, decided.metrics[metric], scale, unit) if decided and metric in \
            decided.metrics else metric
        ax.set_title(note, fontsize=8.5, loc="left",
                     color=VERDICT_COLOURS.get((decided.metrics.get(metric) or {}).get("verdict", "") if decided
                                               else "", "black"))
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color=CANARY, marker="o", markerfacecolor="white",
               label="canary (estimate; band: anytime-valid CI, %)"),
        Line2D([], [], color=BASELINE, marker="s", linestyle="--",
               label="baseline (estimate; band: anytime-valid CI, %)"),
        Line2D([], [], color=BOUND, linestyle=":", linewidth=2, label="bound: worst accepted canary value"),
        *(Line2D([], [], color="none", marker="o", markerfacecolor=c, markeredgecolor=CANARY, label=f"canary {v}")
          for v, c in VERDICT_COLOURS.items()),
    ]
    fig.legend(handles=handles, loc="upper center", ncol=3, fontsize=7.5, frameon=False,
               bbox_to_anchor=(0.5, 0.935))
    axes[-1].set_xlabel("look (one per analysis interval); shaded: the look that decided")
    if xs:
        axes[-1].set_xticks(xs)
        axes[-1].set_xlim(min(xs) - 0.6, max(xs) + 0.6)
    fig.tight_layout(rect=(0, 0, 1, 0.90))
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
    """Write ``<out_dir>/<name>-rollout/`` with report.md, summary.json and the figure rollout.png.

    Returns:
        paths by role: ``markdown``, ``json`` and ``plot:rollout``.
    """
    out = out_dir / f"{name}-rollout"
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {"plot:rollout": plot_rollout(record, namespace, name, out / "rollout.png")}
    data = summary(record, namespace, name)
    (out / "summary.json").write_text(json.dumps(data, indent=2))
    paths["json"] = out / "summary.json"
    lines = [
        f"# Rollout of {headline(record, namespace, name)}",
        "",
        "![rollout](rollout.png)",
        "",
        f"- model: `{record.previous_storage_uri}` -> `{record.target_storage_uri}`",
        f"- revisions: baseline `{record.previous_revision}`, canary `{record.canary_revision}`",
        f"- mode: {record.mode}; last step {record.step} at {record.traffic} % canary traffic",
        f"- phase: {record.phase.value} (the rollout record's phase, as in summary.json)",
        f"- outcome: {record.message}",
        "",
        "| look | traffic % | decision | score | reason |",
        "|---:|---:|---|---:|---|",
    ]
    for h in record.history:
        score = "" if h.score is None else f"{h.score:.2f}"
        lines.append(f"| {h.look} | {h.traffic} | {h.decision.value} | {score} | {h.reason.replace('|', '/')} |")
    lines.append("")
    (out / "report.md").write_text("\n".join(lines))
    paths["markdown"] = out / "report.md"
    return paths


def _fmt(value: Any, kind: str) -> str:
    scale, unit = _scale(kind)
    return f"{value * scale:.3g}{unit}" if isinstance(value, int | float) and math.isfinite(value) else "-"


def live_status(record: RolloutRecord, steps: list[int], interval_s: float, warmup_s: float,
                now_s: float) -> dict[str, Any]:
    """What ``kaiops rollout`` shows while it runs: step, traffic, the last look's estimates and decision, and
    the time to the next look (pure; the clock is passed in).

    Args:
        record: the record read from the InferenceService's annotations.
        steps: the policy's traffic percents; interval_s, warmup_s: the policy's look interval and warm-up (s).
        now_s: the current time, seconds since the epoch.

    Returns:
        ``{"phase", "step", "traffic", "steps", "next_look_s" (None when no look is due), "decision",
        "reason", "metrics": [{"metric", "canary", "baseline", "bound", "verdict"}]}``, values as display text.
    """
    from tasks.rollout.state import parse_time

    last = record.history[-1] if record.history else None
    next_look: float | None = None
    base = record.last_look or record.canary_started
    if record.phase is Phase.PROGRESSING and base:
        due = parse_time(base).timestamp() + interval_s + (0.0 if record.history else warmup_s)
        next_look = max(0.0, due - now_s)
    marks = [f"[{p}]" if i == record.step and not record.phase.terminal else str(p) for i, p in enumerate(steps)]
    rows = []
    for metric, row in sorted((last.metrics if last else {}).items()):
        kind = row.get("kind", "ratio")
        canary = _fmt(row.get("canary"), kind)
        baseline = _fmt(row.get("baseline"), kind)
        if kind == "ratio" and row.get("canary_low") is not None:
            canary += f" [{_fmt(row.get('canary_low'), kind)}, {_fmt(row.get('canary_high'), kind)}]"
            baseline += f" [{_fmt(row.get('baseline_low'), kind)}, {_fmt(row.get('baseline_high'), kind)}]"
        rows.append({"metric": metric, "canary": canary, "baseline": baseline,
                     "bound": _fmt(row.get("bound"), kind), "verdict": row.get("verdict", "")})
    return {
        "phase": record.phase.value,
        "step": f"{record.step + 1}/{len(steps)}",
        "traffic": f"{record.traffic} %",
        "steps": ">".join(marks) + " %",
        "look": last.look if last else 0,
        "decision": last.decision.value if last else "",
        "reason": last.reason if last else record.message,
        "next_look_s": None if next_look is None else round(next_look),
        "metrics": rows,
    }
