"""Structural validation of one object, as the apiserver does it with ``fieldValidation=Strict``.

Checks the ``apiVersion``/``kind`` against the pinned schemas (:mod:`tasks.manifests.catalog`), then turns
every JSON Schema error into a :class:`~tasks.manifests.findings.Problem` of one structural class: unknown
field, wrong type, missing required field, enum, or any other value constraint.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from jsonschema import ValidationError

from tasks.manifests import catalog
from tasks.manifests.findings import Problem, Rule, Severity
from tasks.manifests.paths import join_path

_JSON_TYPES = {
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
    type(None): "null",
}
_TYPE_CONTEXT = {"type", "oneOf", "anyOf"}


def split_api_version(api_version: str) -> tuple[str, str]:
    """Return ``(group, version)`` for ``"ray.io/v1"`` -> ``("ray.io", "v1")``; ``"v1"`` -> ``("", "v1")``."""
    group, _, version = api_version.rpartition("/")
    return group, version


def check(doc: dict[str, Any]) -> Iterator[Problem]:
    """Yield the structural problems of one Kubernetes object.

    Args:
        doc: the object (a mapping with string ``apiVersion`` and ``kind``; nulls already pruned).

    Yields:
        :class:`Problem` rows with rules ``schema.*``.
    """
    group, version = split_api_version(doc["apiVersion"])
    kind = doc["kind"]
    info = catalog.kind_info(group, kind)
    if info is None:
        yield Problem(
            Rule.SCHEMA_UNKNOWN_KIND,
            Severity.warning,
            "kind",
            f"no pinned schema for {doc['apiVersion']} {kind}; its fields were not checked",
            "check apiVersion and kind spelling; kaiops knows core Kubernetes, KubeRay, KServe and Gateway API",
        )
        return
    if version not in info.versions:
        yield Problem(
            Rule.SCHEMA_API_VERSION,
            Severity.error,
            "apiVersion",
            f"{kind} is not served at {doc['apiVersion']}",
            f"apiVersion: {_api_version(group, info.versions[0])}",
        )
        return
    validator = catalog.validator(group, version, kind)
    if validator is None:  # pragma: no cover - kind_info and validator read the same sources
        return
    for error in validator.iter_errors(doc):
        yield from _problems(error)


def _api_version(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


def _problems(error: ValidationError) -> Iterable[Problem]:
    path = join_path(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        return _unknown_fields(error, path)
    if error.validator == "required" and isinstance(error.instance, dict):
        return _missing(error, path)
    if error.validator in _TYPE_CONTEXT and _is_type_error(error):
        return [_wrong_type(error, path)]
    if error.validator == "enum":
        options = error.validator_value if isinstance(error.validator_value, list) else []
        allowed = ", ".join(json.dumps(v) for v in options)
        return [
            Problem(
                Rule.SCHEMA_ENUM,
                Severity.error,
                path,
                f"{json.dumps(error.instance)} is not an allowed value",
                f"use one of: {allowed}",
            )
        ]
    return [
        Problem(
            Rule.SCHEMA_VALUE,
            Severity.error,
            path,
            f"{error.message}",
            f"change the value to satisfy `{error.validator}: {json.dumps(error.validator_value)[:80]}`",
        )
    ]


def _unknown_fields(error: ValidationError, path: str) -> Iterator[Problem]:
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    known = sorted(schema.get("properties", {}))
    instance = error.instance if isinstance(error.instance, dict) else {}
    for name in instance:
        if name in known:
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        fix = f"rename it to `{close[0]}` (the closest field here)." if close else "remove it."
        yield Problem(
            Rule.SCHEMA_UNKNOWN_FIELD,
            Severity.error,
            join_path([*error.absolute_path, name]),
            f"unknown field `{name}` in {path or 'the object'}",
            f"{fix} Known fields here: {', '.join(known[:25])}{' ...' if len(known) > 25 else ''}",
        )


def _missing(error: ValidationError, path: str) -> Iterator[Problem]:
    required = error.validator_value if isinstance(error.validator_value, list) else []
    instance = error.instance if isinstance(error.instance, dict) else {}
    for name in required:
        if name not in instance:
            yield Problem(
                Rule.SCHEMA_REQUIRED,
                Severity.error,
                join_path([*error.absolute_path, name]),
                f"required field `{name}` is missing in {path or 'the object'}",
                f"add `{name}`",
            )


def _is_type_error(error: ValidationError) -> bool:
    if error.validator == "type":
        return True
    return bool(error.context) and all(e.validator == "type" for e in error.context)


def _expected_types(error: ValidationError) -> list[str]:
    if error.validator == "type":
        value = error.validator_value
        return [str(v) for v in value] if isinstance(value, Sequence) and not isinstance(value, str) else [str(value)]
    return [t for e in error.context or [] for t in _expected_types(e)]


def _wrong_type(error: ValidationError, path: str) -> Problem:
    expected = [t for t in dict.fromkeys(_expected_types(error)) if t != "null"]
    got = _JSON_TYPES.get(type(error.instance), type(error.instance).__name__)
    value = json.dumps(error.instance, default=str)
    if expected == ["string"] and got in ("integer", "number", "boolean"):
        fix = f'quote it: "{value}"'
    elif "integer" in expected and isinstance(error.instance, str) and error.instance.strip().isdigit():
        fix = f"write the number without quotes: {error.instance.strip()}"
    else:
        fix = f"write a value of type {' or '.join(expected)}"
    return Problem(
        Rule.SCHEMA_TYPE,
        Severity.error,
        path,
        f"expected {' or '.join(expected)}, got {got} {value[:60]}",
        fix,
    )
