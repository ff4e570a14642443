"""A small PromQL lexer: the ``name{label="..."}`` vector selectors a template uses (for the pre-flight).

Not a PromQL parser: Prometheus's own (``/api/v1/format_query``) says whether an expression parses; this only
finds which metric and label names it selects. Lexical rules follow the Prometheus lexer
(promql/parser/lex.go): numbers (decimal, hex, ``1e3``, ``Inf``/``NaN``) and durations (``5m``, ``1h30m``)
are literals, never metric names. A policy placeholder ``${name}`` (configs/canary.py), e.g. ``offset ${range}``,
is a literal too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool",
    "inf", "nan", "atan2", "start", "end",
}  # fmt: skip
_TOKEN = re.compile(
    r"""
    (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<range>\[[^\]]*\])
  | (?P<placeholder>\$\{[A-Za-z_][A-Za-z0-9_]*\})
  | (?P<duration>(?:[0-9]+(?:ms|[smhdwy]))+(?![A-Za-z0-9_:]))
  | (?P<number>0[xX][0-9a-fA-F]+|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<brace>\{)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_MATCHER = re.compile(
    r"""\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)\s*,?"""
)
_AGGREGATIONS = {
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
    "quantile", "limitk", "limit_ratio",
}  # fmt: skip


@dataclass(frozen=True)
class Selector:
    """One vector selector of a PromQL expression: ``metric{labels...}`` (metric may be None: ``{__name__=..}``)."""

    metric: str | None
    labels: tuple[str, ...]


def metric_selectors(promql: str) -> list[Selector]:
    """Return the vector selectors in ``promql`` (a small parser, enough for templates).

    Identifiers followed by ``(`` are functions or aggregations, those after ``by``/``without``/``on``/
    ``ignoring``/``group_*`` are label lists, keywords are skipped, strings and ``[ranges]`` are opaque;
    numbers (``1e3``, ``0x1F``, ``.5``) and durations (``offset 5m``, ``1h30m``) are literals, as in
    Prometheus's lexer (promql/parser/lex.go ``lexNumberOrDuration``).

    Raises:
        ValueError: a label matcher block ``{...}`` that does not parse.
    """
    tokens = [(m.lastgroup, m.group(), m.end()) for m in _TOKEN.finditer(promql)]
    selectors: list[Selector] = []
    i = 0
    while i < len(tokens):
        kind, text, _ = tokens[i]
        nxt = _next_significant(tokens, i + 1)
        if kind == "ident":
            if text.lower() in ("by", "without", "on", "ignoring", "group_left", "group_right"):
                if nxt is not None and tokens[nxt][1] == "(":
                    i = _skip_parens(tokens, nxt)
                    continue
            elif not _is_function_or_keyword(text, tokens[nxt][1] if nxt is not None else ""):
                labels: tuple[str, ...] = ()
                if nxt is not None and tokens[nxt][0] == "brace":
                    labels, i = _matchers(promql, tokens, nxt)
                    selectors.append(Selector(text, labels))
                    continue
                selectors.append(Selector(text, labels))
        elif kind == "brace":  # {__name__="x"} with no metric name in front
            labels, i = _matchers(promql, tokens, i)
            selectors.append(Selector(None, labels))
            continue
        i += 1
    return selectors


def _is_function_or_keyword(ident: str, following: str) -> bool:
    """True for keywords, calls ``f(``, and aggregations followed by ``by``/``without``."""
    if ident.lower() in _KEYWORDS or following == "(":
        return True
    return ident in _AGGREGATIONS and following.lower() in ("by", "without")


def _next_significant(tokens: list[tuple[str | None, str, int]], i: int) -> int | None:
    while i < len(tokens) and tokens[i][0] == "other" and tokens[i][1].isspace():
        i += 1
    return i if i < len(tokens) else None


def _skip_parens(tokens: list[tuple[str | None, str, int]], i: int) -> int:
    depth = 0
    while i < len(tokens):
        if tokens[i][1] == "(":
            depth += 1
        elif tokens[i][1] == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return i


def _matchers(promql: str, tokens: list[tuple[str | None, str, int]], brace: int) -> tuple[tuple[str, ...], int]:
    """Parse ``{a="x", b=~"y"}`` starting at token index ``brace``; return (label names, next token index)."""
    pos = tokens[brace][2]
    close = pos
    labels: list[str] = []
    while True:
        while close < len(promql) and promql[close].isspace():
            close += 1
        if close < len(promql) and promql[close] == "}":
            break
        m = _MATCHER.match(promql, close)
        if not m:
            raise ValueError(f"cannot parse label matchers at {promql[close:close + 40]!r}")
        labels.append(m.group(1))
        close = m.end()
    i = brace + 1
    while i < len(tokens) and tokens[i][2] <= close:
        i += 1
    return tuple(labels), i + 1
