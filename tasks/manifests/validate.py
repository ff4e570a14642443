"""Entry points: validate parsed documents or YAML files, and return every finding.

Order per document: is it a Kubernetes object at all; structural schema and metadata; domain rules. When a
domain rule and a schema check report the same field, the domain rule's finding is kept (it names the field
that does exist), the generic one is dropped.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from tasks.manifests import metadata, rules, schema
from tasks.manifests.findings import Finding, Problem, Rule, Severity
from tasks.manifests.paths import mapping
from tasks.manifests.positions import Position, load_with_positions, locate
from tasks.manifests.rules.base import Manifest


def to_json_like(value: Any) -> Any:
    """Return ``value`` as the apiserver would see it after YAML->JSON: nulls in mappings pruned, dates as
    RFC 3339 strings, binary as base64, mapping keys as strings."""
    if isinstance(value, dict):
        return {str(k): to_json_like(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [to_json_like(v) for v in value]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def _whole_document(
    source: str, index: int | None, rule: Rule, message: str, fix: str, where: Position | None = None
) -> Finding:
    """Return an error finding about a whole file or document (no object, no field)."""
    line, column = where or (None, None)
    return Finding(source, index, "", "", Severity.error, rule, message, fix, line, column)


def _object_label(doc: dict[str, Any]) -> str:
    name = mapping(doc.get("metadata")).get("name") or mapping(doc.get("metadata")).get("generateName") or "?"
    return f"{doc.get('kind')}/{name}"


def _not_object(doc: Any) -> str | None:
    """Return why ``doc`` is not a Kubernetes object, or None when it is one."""
    if not isinstance(doc, dict):
        return f"the document is a {type(doc).__name__}, not a mapping"
    missing = [k for k in ("apiVersion", "kind") if not isinstance(doc.get(k), str) or not doc.get(k)]
    return f"the document has no {' or '.join(missing)}" if missing else None


def check_object(doc: dict[str, Any]) -> list[Problem]:
    """Return every problem of one Kubernetes object (schema, metadata, domain rules), deduplicated.

    Args:
        doc: a mapping with string ``apiVersion`` and ``kind`` (already JSON-like).
    """
    group, _ = schema.split_api_version(doc["apiVersion"])
    structural = list(schema.check(doc))
    if not any(p.rule is Rule.SCHEMA_UNKNOWN_KIND for p in structural):
        structural += metadata.check(doc, group, doc["kind"])
    domain = list(rules.run(Manifest(doc, group, doc["kind"])))
    claimed = {p.field for p in domain}
    return [p for p in structural if p.field not in claimed] + domain


def validate_documents(
    docs: Sequence[Any], source: str = "<input>", positions: Sequence[dict[str, Position]] | None = None
) -> list[Finding]:
    """Validate already-parsed documents (e.g. from ``yaml.safe_load_all``).

    Every check runs on every object: a schema error does not hide the domain rules of the same object.

    Args:
        docs: the documents, in file order; ``None`` (empty documents) are skipped.
        source: the file name to report.
        positions: per document, ``{field path: (line, column)}`` from
            :func:`tasks.manifests.positions.load_with_positions`; without it findings carry no line.

    Returns:
        findings in document order, each document's in line order; empty when everything is clean.
    """
    findings: list[Finding] = []
    seen: dict[tuple[str, str, str], int] = {}
    for index, raw in enumerate(docs):
        if raw is None:
            continue
        where = positions[index] if positions is not None and index < len(positions) else {}
        doc = to_json_like(raw)
        why = _not_object(doc)
        if why:
            findings.append(
                _whole_document(
                    source,
                    index,
                    Rule.DOCUMENT_NOT_OBJECT,
                    f"not a Kubernetes object: {why}",
                    "make the document a mapping with apiVersion, kind and metadata, or delete it",
                    locate(where, ""),
                )
            )
            continue
        label = _object_label(doc)
        found = [Finding(source, index, label, p.field, p.severity, p.rule, p.message, p.fix)
                 for p in check_object(doc)]
        found += _duplicate(doc, source, index, label, seen)
        located = [_with_position(f, locate(where, f.field)) for f in found]
        findings += sorted(located, key=lambda f: (f.line or 0, f.column or 0))
    return findings


def _with_position(finding: Finding, where: Position | None) -> Finding:
    if where is None:
        return finding
    return dataclasses.replace(finding, line=where[0], column=where[1])


def _duplicate(
    doc: dict[str, Any], source: str, index: int, label: str, seen: dict[tuple[str, str, str], int]
) -> Iterable[Finding]:
    meta = mapping(doc.get("metadata"))
    if not meta.get("name"):
        return []
    key = (doc["apiVersion"].split("/")[0] + "/" + doc["kind"], str(meta.get("namespace", "")), meta["name"])
    if key in seen:
        return [
            Finding(
                source,
                index,
                label,
                "metadata.name",
                Severity.warning,
                Rule.DOCUMENT_DUPLICATE,
                f"{label} is already defined in document {seen[key]}; the later one overwrites it",
                "remove one of them or give them different names",
            )
        ]
    seen[key] = index
    return []


def validate_text(text: str, source: str) -> list[Finding]:
    """Validate a YAML stream; a YAML syntax error or a stream without objects is itself a finding."""
    try:
        parsed = load_with_positions(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        context = getattr(exc, "context", None)
        return [
            _whole_document(
                source,
                None,
                Rule.DOCUMENT_YAML,
                f"not valid YAML: {problem}" + (f" ({context})" if context else ""),
                "fix the YAML syntax (indentation, quoting, tabs) at that position",
                (mark.line + 1, mark.column + 1) if mark else None,
            )
        ]
    docs = [doc for doc, _ in parsed]
    if not any(d is not None for d in docs):
        return [
            _whole_document(
                source,
                None,
                Rule.DOCUMENT_NOT_OBJECT,
                "the file holds no Kubernetes object",
                "add a document with apiVersion, kind and metadata, or leave the file out",
                (1, 1),
            )
        ]
    return validate_documents(docs, source, [where for _, where in parsed])


def validate_files(paths: Iterable[Path | str]) -> list[Finding]:
    """Validate YAML files, each possibly holding several ``---`` documents.

    Args:
        paths: files to read.

    Returns:
        findings across all files, file by file; an unreadable file is a ``document.unreadable`` finding.
    """
    findings: list[Finding] = []
    for path in paths:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            findings.append(
                _whole_document(
                    source,
                    None,
                    Rule.DOCUMENT_UNREADABLE,
                    f"cannot read the file: {exc.__class__.__name__}: {exc}",
                    "check the path and that the file is UTF-8 text",
                )
            )
            continue
        findings.extend(validate_text(text, source))
    return findings
