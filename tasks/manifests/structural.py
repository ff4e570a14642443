"""Translate Kubernetes structural schemas (CRD ``openAPIV3Schema``, core OpenAPI v3) into JSON Schema.

The apiserver with strict field validation rejects what these translated schemas reject:

- an object that declares ``properties`` refuses any other key (``additionalProperties: false``), unless it
  says ``x-kubernetes-preserve-unknown-fields: true`` or declares ``additionalProperties`` itself;
- ``x-kubernetes-int-or-string`` accepts an integer or a string, ``nullable`` adds ``null``;
- ``x-kubernetes-embedded-resource`` objects may carry ``apiVersion``, ``kind`` and ``metadata``;
- OpenAPI 3.0's boolean ``exclusiveMinimum``/``exclusiveMaximum`` become JSON Schema's numeric ones;
- core ``$ref: #/components/schemas/X`` references point into one shared resource (:data:`CORE_URI`).

CEL rules (``x-kubernetes-validations``) are not evaluated: they need a CEL runtime.
"""

from __future__ import annotations

from typing import Any

CORE_URI = "urn:kaiops:kubernetes-openapi"
_CORE_REF_PREFIX = "#/components/schemas/"

# Keys that only document or drive server-side behaviour (merging, defaulting, CEL); not validated here.
_DROPPED = {
    "description",
    "default",
    "example",
    "nullable",
    "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-validations",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-map-type",
    "x-kubernetes-patch-strategy",
    "x-kubernetes-patch-merge-key",
    "x-kubernetes-group-version-kind",
    "x-kubernetes-unions",
    "readOnly",
}
_SCHEMA_MAPS = {"properties", "patternProperties"}
_SCHEMA_VALUES = {"items", "additionalProperties", "not"}
_SCHEMA_LISTS = {"allOf", "anyOf", "oneOf"}

_EMBEDDED_PROPERTIES: dict[str, dict[str, Any]] = {
    "apiVersion": {"type": "string"},
    "kind": {"type": "string"},
    "metadata": {"type": "object"},
}


def ref_to(name: str) -> dict[str, str]:
    """Return a JSON Schema ``$ref`` to the core OpenAPI schema ``name`` (``io.k8s.api.core.v1.Secret``)."""
    return {"$ref": f"{CORE_URI}{_CORE_REF_PREFIX}{name}"}


def translate(node: Any) -> Any:
    """Return the JSON Schema (draft 2020-12) equivalent of one structural schema node.

    Args:
        node: a schema node (dict); other values are returned unchanged.

    Returns:
        a new dict; ``node`` is not modified.
    """
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key in _SCHEMA_MAPS:
            out[key] = {name: translate(sub) for name, sub in value.items()}
        elif key in _SCHEMA_VALUES:
            out[key] = translate(value) if isinstance(value, dict) else value
        elif key in _SCHEMA_LISTS:
            out[key] = [translate(sub) for sub in value]
        elif key == "$ref" and isinstance(value, str) and value.startswith(_CORE_REF_PREFIX):
            out[key] = CORE_URI + value
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and isinstance(value, bool):
            continue  # handled with minimum/maximum below
        else:
            out[key] = value
    _bounds(node, out)
    _special_types(node, out)
    if node.get("x-kubernetes-embedded-resource"):
        out["properties"] = {**_EMBEDDED_PROPERTIES, **out.get("properties", {})}
    strict = not node.get("x-kubernetes-preserve-unknown-fields")
    if strict and "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def _bounds(node: dict[str, Any], out: dict[str, Any]) -> None:
    for flag, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if node.get(flag) is True and bound in node:
            out[flag] = out.pop(bound)


def _special_types(node: dict[str, Any], out: dict[str, Any]) -> None:
    if node.get("x-kubernetes-int-or-string") or node.get("format") == "int-or-string":
        out.pop("oneOf", None)
        out.pop("anyOf", None)
        out["type"] = ["integer", "string"]
    if node.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
