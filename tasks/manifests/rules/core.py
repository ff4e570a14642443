"""Rules for core objects: Secret encoding (``data`` is base64, ``stringData`` is plain text).

Source: Kubernetes API reference for Secret (``data`` values are base64-encoded strings, ``stringData`` is
write-only plain text merged into ``data``, stringData wins on conflicts) and
staging/src/k8s.io/api/core/v1/types.go (``Secret.Data map[string][]byte`` decoded with standard base64).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator

from tasks.manifests.findings import Rule, Severity
from tasks.manifests.paths import child, mapping
from tasks.manifests.rules.base import SECRET, Hit, Manifest, rule


def decode_base64(value: str) -> bytes | None:
    """Return the bytes of a strict standard-base64 string (whitespace ignored), or None when invalid."""
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


@rule(Rule.SECRET_BASE64, SECRET)
def data_base64(manifest: Manifest) -> Iterator[Hit]:
    """Every ``data`` value of a Secret must be valid base64.

    Source: Kubernetes core/v1 types.go (``Data map[string][]byte``; JSON decoding of ``[]byte`` is standard
    base64, so the apiserver rejects "illegal base64 data").
    """
    data = mapping(manifest.doc.get("data"))
    for key, value in data.items():
        if isinstance(value, str) and decode_base64(value) is None:
            yield Hit(
                Severity.error,
                child("data", key),
                f"data.{key} is not valid base64 (data values must be base64-encoded)",
                f"move it to stringData.{key} as plain text, or encode it: `printf %s '<value>' | base64 -w0`",
            )


@rule(Rule.SECRET_KEY_IN_BOTH, SECRET)
def key_in_both(manifest: Manifest) -> Iterator[Hit]:
    """A key in both ``data`` and ``stringData``: the ``stringData`` value silently wins.

    Source: Kubernetes core/v1 types.go (``StringData``: "values in stringData take precedence").
    """
    data = mapping(manifest.doc.get("data"))
    for key in mapping(manifest.doc.get("stringData")):
        if key in data:
            yield Hit(
                Severity.warning,
                child("stringData", key),
                f"{key} is set in both data and stringData; the data value is discarded",
                "keep the key in only one of them",
            )


@rule(Rule.SECRET_STRING_DATA_ENCODED, SECRET)
def string_data_encoded(manifest: Manifest) -> Iterator[Hit]:
    """A ``stringData`` value that is base64 of readable text is probably encoded twice.

    Source: Kubernetes core/v1 types.go (``StringData`` is stored as given, then encoded once more).
    """
    for key, value in mapping(manifest.doc.get("stringData")).items():
        if not isinstance(value, str) or len(value) < 12 or len(value) % 4:
            continue
        raw = decode_base64(value)
        try:
            text = raw.decode("utf-8") if raw else ""
        except UnicodeDecodeError:
            continue
        if text and text.isprintable():
            yield Hit(
                Severity.info,
                child("stringData", key),
                f"stringData.{key} looks base64-encoded; stringData takes plain text",
                f"write the plain value under stringData, or move the encoded value to data.{key}",
            )
