"""Parsers for the values a user hands kaiops: storage URIs, Kubernetes names, numbers, paths, versions.

One place for the rules, used by the CLI (before anything is written), by the flows' parameters (pydantic
``Annotated`` types at the flow boundary, so a Prefect UI run is checked the same way) and by the registry
receiver's payload parser. Every parser raises :class:`tasks.errors.InputError` naming the source (file,
``<cli>``, ``<payload>``), the field and the fix; the ``Annotated`` types raise ``ValueError`` with the same
words, which pydantic turns into a validation error at the field.

The rules, one module per kind of value: :mod:`~configs.inputs.text`, :mod:`~configs.inputs.names`,
:mod:`~configs.inputs.storage_uri` (with the sources of its rules), :mod:`~configs.inputs.numbers`,
:mod:`~configs.inputs.cli_values`. This module holds the pydantic ``Annotated`` types of the flow boundary and
is the one import path for all of them.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from configs.inputs.cli_values import (
    block_ref,
    existing_dir,
    existing_file,
    http_url,
    listen_host,
    model_format,
    new_file,
    output_dir,
    ray_address_problem,
    timezone_name,
)
from configs.inputs.names import check_name, name_problem, name_validator
from configs.inputs.numbers import check_seconds, positive_int, seconds_problem
from configs.inputs.storage_uri import (
    MODEL_MOUNT_DIR,
    OCI_MODES,
    SCHEME_FIXES,
    STORAGE_SCHEMES,
    ModelUri,
    image_problem,
    parse_storage_uri,
    uri_validator,
)
from configs.inputs.text import plain_text_problem

__all__ = [
    "MODEL_MOUNT_DIR", "OCI_MODES", "SCHEME_FIXES", "STORAGE_SCHEMES", "BucketUri", "ConfigPath", "K8sName",
    "ModelUri", "Namespace", "Replicas", "Seconds", "StorageUri", "block_ref", "check_name", "check_seconds",
    "existing_dir", "existing_file", "http_url", "image_problem", "listen_host", "model_format", "name_problem",
    "new_file", "output_dir", "parse_storage_uri", "plain_text_problem", "positive_int", "ray_address_problem",
    "seconds_problem", "timezone_name",
]

K8sName = Annotated[str, AfterValidator(name_validator("label")),
                    Field(description="A Kubernetes name (DNS-1123 label: lowercase letters, digits, '-').",
                          max_length=63)]
Namespace = Annotated[str, AfterValidator(name_validator("label")),
                      Field(description="A Kubernetes namespace (DNS-1123 label).", max_length=63)]
StorageUri = Annotated[str, AfterValidator(uri_validator((*STORAGE_SCHEMES, "mnt"))),
                       Field(description="Model location as the KServe storage initializer reads it: s3://, gs://, "
                             "pvc://, hf://, oci://, https:// ...", max_length=2048)]
BucketUri = Annotated[str, AfterValidator(uri_validator(("s3", "gs"))),
                      Field(description="s3://<bucket>/<prefix> or gs://<bucket>/<prefix>.", max_length=2048)]

#: A wait in seconds at the flow boundary: finite, above 0, at most a day.
Seconds = Annotated[float, Field(gt=0, le=86400, allow_inf_nan=False, description="Seconds (0 < s <= 86400).")]


def _path_text(value: str) -> str:
    if not value.strip() or "\x00" in value:
        raise ValueError(f"{value!r} names no file (fix: pass a config file such as configs/backups/nightly.yaml)")
    return value


#: A config file path at the flow boundary: not empty or blank, no NUL (the file itself is read by its loader).
ConfigPath = Annotated[str, AfterValidator(_path_text), Field(description="A config file path.", max_length=4096)]
#: Worker replicas of a Ray worker group (KubeRay's own bound is the group's min/max; this is the sanity bound).
Replicas = Annotated[int, Field(ge=0, le=1000, strict=True, description="Worker replicas (0..1000).")]
