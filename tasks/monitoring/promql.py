"""PrometheusRule groups parsed by Prometheus's own parser, and the metric names their expressions use.

The parse is ``promtool check rules`` (the Debian ``prometheus`` package, the same Go parser Prometheus and the
Prometheus Operator runs: prometheus-operator v0.89.0 pkg/operator/rules.go:200-231 ``ValidateRule`` - used by
its admission webhook, pkg/admission/admission.go:242, and before it loads a rule - calls ``rulefmt.Parse``,
which parses every ``expr`` with ``parser.ParseExpr``; a rejected PrometheusRule is never loaded). Metric names are
read with :func:`tasks.metrics.metric_selectors`, the project's selector reader that the canary preflight uses,
on expressions promtool has accepted.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tasks.errors import PermanentError
from tasks.metrics import metric_selectors

_LINE = re.compile(r'^(?P<file>[^:]+): (?:(?P<line>\d+):(?P<col>\d+): )?group "(?P<group>[^"]*)", rule (?P<rule>\d+),'
                   r'(?: "(?P<name>[^"]*)":)? (?P<message>.*)$')


@dataclass(frozen=True)
class ParseProblem:
    """What promtool reported about one rule (or the whole file when ``group`` is None).

    Attributes:
        group: index into ``spec.groups`` (None: the file as a whole).
        rule: index into that group's ``rules`` (None: the group).
        message: promtool's message (``could not parse expression: 1:17: parse error: ...``).
    """

    group: int | None
    rule: int | None
    message: str


def promtool() -> str:
    """Path of ``promtool``.

    Raises:
        PermanentError: not installed (the fix: ``make prometheus``, the Debian ``prometheus`` package).
    """
    found = shutil.which("promtool")
    if not found:
        raise PermanentError("promtool not found on PATH: install the Debian package prometheus (`make prometheus`)")
    return found


def check_groups(groups: list[Any], timeout: float = 30.0) -> list[ParseProblem]:
    """Run ``promtool check rules`` on a PrometheusRule's ``spec.groups``.

    Args:
        groups: the ``spec.groups`` list, as in the manifest.
        timeout: seconds promtool may take.

    Returns:
        one problem per rule promtool rejected; empty when the groups are valid Prometheus rules.

    Raises:
        PermanentError: promtool is missing or did not finish.
    """
    with tempfile.TemporaryDirectory(prefix="kaiops-promtool-") as tmp:
        path = Path(tmp) / "rules.yaml"
        path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
        try:
            proc = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True,
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise PermanentError(f"promtool check rules did not finish in {timeout:g} s") from exc
    if proc.returncode == 0:
        return []
    names = [g.get("name") if isinstance(g, dict) else None for g in groups]
    problems: list[ParseProblem] = []
    for raw in (proc.stdout + "\n" + proc.stderr).splitlines():
        line = raw.strip()
        if not line.startswith(str(path)):
            continue
        m = _LINE.match(line)
        if m:
            group = names.index(m["group"]) if m["group"] in names else None
            problems.append(ParseProblem(group, int(m["rule"]) - 1, m["message"]))
        else:
            problems.append(ParseProblem(None, None, line.removeprefix(f"{path}: ")))
    if not problems:
        problems.append(ParseProblem(None, None, (proc.stdout + proc.stderr).strip()[-500:] or "promtool failed"))
    return problems


#: Series Prometheus itself writes, whatever it scrapes (prometheus scrape/scrape.go ``addReportSample``,
#: rules/alerting.go ``ALERTS``/``ALERTS_FOR_STATE``).
PROMETHEUS_SERIES = frozenset({
    "up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
    "scrape_series_added", "ALERTS", "ALERTS_FOR_STATE",
})


# Number and duration literals (``5m``, ``1h30m``, ``1e3``, ``0x1f``): the selector reader would take their letters
# for metric names (``offset 5m`` -> ``m``), so they become ``0`` first.
_NUMBER = re.compile(r"(?<![A-Za-z0-9_:.])(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?"
                     r"(?:(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*)?)(?![A-Za-z0-9_:])")


def metric_names(expr: str) -> list[str]:
    """Metric names a PromQL expression selects, in order, without duplicates (``{__name__=...}`` ignored).

    Raises:
        ValueError: a label matcher block that does not parse (promtool reports the expression first).
    """
    seen: list[str] = []
    for sel in metric_selectors(_NUMBER.sub("0", expr)):
        if sel.metric and sel.metric not in seen:
            seen.append(sel.metric)
    return seen


_BRACES = r"""\s*\{(?:"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`|[^}"'`])*\}"""


def selectors(expr: str) -> list[tuple[str, str]]:
    """``(metric, selector text)`` for each distinct vector selector of ``expr``: ``up{job="x"}``, or the bare
    name when it has no matchers. The text is what Prometheus would select (ranges and offsets left out).

    Raises:
        ValueError: a label matcher block that does not parse.
    """
    out: list[tuple[str, str]] = []
    for name in metric_names(expr):
        found = [m.group(0) for m in re.finditer(rf"(?<![A-Za-z0-9_:\"']){re.escape(name)}(?:{_BRACES})?", expr)]
        for text in found or [name]:
            text = re.sub(r"\s+", " ", text.strip())
            if (name, text) not in out:
                out.append((name, text))
    return out


def recorded_names(groups: list[Any]) -> set[str]:
    """Names of the recording rules (``record:``) in ``groups``: later rules may use them."""
    return {r["record"] for g in groups if isinstance(g, dict) for r in g.get("rules") or []
            if isinstance(r, dict) and isinstance(r.get("record"), str)}
