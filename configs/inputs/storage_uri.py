"""Storage URIs as KServe's storage initializer reads them.

- storage URIs: kserve-storage 0.20.0 ``kserve_storage.Storage.download`` (the dispatch on ``gs://``, ``s3://``,
  ``hdfs://``, ``webhdfs://``, the Azure blob/file patterns, ``hf://``, git and the ``https?://(.+)/(.+)``
  catch-all; ``_download_hf`` wants exactly ``owner/model[:revision]``; ``_download_from_uri`` wants a file
  name in the path), KServe v0.20.0 ``pkg/controller/v1beta1/inferenceservice/utils/utils.go``
  (``SupportedStorageURIPrefixList``: adds ``pvc://``, ``oci://``, ``oci+native://``), ``pkg/utils/storage.go``
  (``ParsePvcURI``: ``pvc://<claim>[/path]``; ``ParseOciScheme``: ``oci+<mode>://``). Bucket names: the S3
  and GCS naming rules. OCI references: the distribution ``reference`` grammar.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from configs.errors import InputError
from configs.inputs.names import name_problem
from configs.inputs.text import plain_text_problem

#: Schemes the storage initializer (or KServe's controller, for pvc:// and oci://) accepts, in KServe's order.
STORAGE_SCHEMES = ("gs", "s3", "pvc", "hdfs", "webhdfs", "https", "http", "hf", "oci", "file")
OCI_MODES = ("native", "modelcar", "fetch")
MODEL_MOUNT_DIR = "/mnt/models"
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://")
_S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
_GCS_BUCKET = re.compile(r"[a-z0-9][a-z0-9._\-]{1,220}[a-z0-9]")
_IPV4 = re.compile(r"\d+\.\d+\.\d+\.\d+")
_AZURE = re.compile(r"https://(.+?)\.(blob\.core\.windows\.net|z[0-9]{1,2}\.blob\.storage\.azure\.net|"
                    r"file\.core\.windows\.net|z[0-9]{1,2}\.file\.storage\.azure\.net)/(.+)")
_GIT = re.compile(r"https://.+\.git")
# distribution/reference grammar (github.com/distribution/reference regexp.go), without the "docker.io" defaulting
_OCI_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_OCI_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_OCI_DOMAIN = rf"(?:{_OCI_LABEL}(?:\.{_OCI_LABEL})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_OCI_REF = re.compile(rf"(?:{_OCI_DOMAIN}/)?{_OCI_COMPONENT}(?:/{_OCI_COMPONENT})*"
                      r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?")
SCHEME_FIXES: dict[str, str] = {
    "s3a": "s3://<bucket>/<path>", "s3n": "s3://<bucket>/<path>", "gcs": "gs://<bucket>/<path>",
    "gcp": "gs://<bucket>/<path>", "minio": "s3://<bucket>/<path> with the serving.kserve.io/s3-endpoint annotation",
    "azure": "https://<account>.blob.core.windows.net/<container>/<path>",
    "wasb": "https://<account>.blob.core.windows.net/<container>/<path>",
    "wasbs": "https://<account>.blob.core.windows.net/<container>/<path>",
    "abfs": "https://<account>.blob.core.windows.net/<container>/<path>",
    "abfss": "https://<account>.blob.core.windows.net/<container>/<path>",
    "huggingface": "hf://<owner>/<model>[:<revision>]", "docker": "oci://<registry>/<image>:<tag>",
}  # fmt: skip
_FORMS = {
    "s3": "s3://<bucket>/<prefix>", "gs": "gs://<bucket>/<prefix>", "pvc": "pvc://<claim>/<path>",
    "hf": "hf://<owner>/<model>[:<revision>]", "oci": "oci://<registry>/<repository>:<tag>",
    "https": "https://<host>/<path>/<file>", "http": "http://<host>/<path>/<file>",
    "hdfs": "hdfs://<path>", "webhdfs": "webhdfs://<path>", "file": "file://<absolute path>",
}  # fmt: skip


@dataclass(frozen=True)
class ModelUri:
    """A storage URI the storage initializer can read.

    Attributes:
        uri: the URI as given (unchanged: it is what gets written to ``storageUri``).
        scheme: ``s3``, ``gs``, ``pvc``, ``hf``, ``oci``, ``https``, ``http``, ``hdfs``, ``webhdfs``, ``file``,
            or ``mnt`` for the multi-model mount ``/mnt/models``.
        location: bucket, claim, Hugging Face owner, OCI registry/repository or host ('' when none).
        path: the rest (object prefix, path in the claim, model[:revision], tag, ...).
    """

    uri: str
    scheme: str
    location: str
    path: str


class _UriError(ValueError):
    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem} (fix: {fix})")
        self.problem, self.fix = problem, fix


def _segments_problem(uri: str, path: str) -> None:
    for seg in path.split("/"):
        if seg in (".", ".."):
            raise _UriError(f"{uri!r} has a {seg!r} path segment: the storage initializer joins object keys onto "
                            "the model directory, so it would resolve outside the prefix",
                            "write the path without '.' or '..' segments")


def _parse(uri: Any, schemes: tuple[str, ...]) -> ModelUri:
    if not isinstance(uri, str):
        raise _UriError(f"{uri!r} is a {type(uri).__name__}, not a URI", "pass the URI as a string, e.g. "
                        "s3://<bucket>/<prefix>")
    example = _FORMS["s3" if "s3" in schemes else schemes[0]]
    problem = plain_text_problem(uri, what="the URI")
    if problem and not uri.strip():
        raise _UriError(problem, f"pass the model's location, e.g. {example}")
    if problem:
        raise _UriError(f"{uri!r}: {problem}", "write the URI in ASCII without spaces (rename the object "
                        "prefix if it has spaces: the storage initializer does not decode %20)")
    if uri == MODEL_MOUNT_DIR or uri.startswith(MODEL_MOUNT_DIR + "/"):
        if "mnt" not in schemes:
            raise _UriError(f"{uri!r} is the multi-model mount, which downloads nothing",
                            "pass the model's own location, e.g. " + _FORMS[schemes[0]])
        return ModelUri(uri, "mnt", "", uri[len(MODEL_MOUNT_DIR):].lstrip("/"))
    match = _SCHEME_RE.match(uri)
    if not match:
        raise _UriError(f"{uri!r} has no scheme: the storage initializer reads only URIs such as "
                        + ", ".join(f"{s}://" for s in schemes if s != "mnt"),
                        f"write it as {example}" + (
                            " (a PVC: pvc://<claim>/<path>)" if "pvc" in schemes else ""))
    scheme, rest = match.group(1), uri[match.end():]
    mode = ""
    if scheme.startswith("oci+"):
        scheme, mode = "oci", scheme[4:]
    if scheme not in schemes:
        lower = scheme.lower()
        fix = SCHEME_FIXES.get(lower) or (_FORMS[lower] if lower in schemes else None)
        known = ", ".join(f"{s}://" for s in schemes if s != "mnt")
        raise _UriError(f"{uri!r}: the {scheme}:// scheme is not one the storage initializer reads ({known})",
                        f"write it as {fix}" if fix else f"use one of {known}")
    if scheme == "oci" and mode and mode not in OCI_MODES:
        raise _UriError(f"{uri!r}: oci+{mode}:// is not an OCI mode KServe knows",
                        "write oci://, oci+native://, oci+modelcar:// or oci+fetch://")
    return _PER_SCHEME[scheme](uri, rest)


def _bucket(uri: str, scheme: str, rest: str) -> ModelUri:
    bucket, _, path = rest.partition("/")
    form = _FORMS[scheme]
    if not bucket:
        raise _UriError(f"{uri!r} names no bucket", f"write it as {form}")
    pattern = _S3_BUCKET if scheme == "s3" else _GCS_BUCKET
    if (not pattern.fullmatch(bucket) or ".." in bucket or _IPV4.fullmatch(bucket)
            or (scheme == "gs" and any(len(part) > 63 for part in bucket.split(".")))):
        raise _UriError(f"{uri!r}: {bucket!r} is not a valid {'S3' if scheme == 's3' else 'GCS'} bucket name "
                        "(3-63 lowercase letters, digits, '-' and '.'" + (", '_'" if scheme == "gs" else "")
                        + ", starting and ending with a letter or digit; no port, user or IP address)",
                        f"write it as {form}")
    _segments_problem(uri, path)
    return ModelUri(uri, scheme, bucket, path)


def _pvc(uri: str, rest: str) -> ModelUri:
    claim, _, path = rest.partition("/")
    problem = name_problem(claim, "subdomain") if claim else "names no claim"
    if problem:
        raise _UriError(f"{uri!r}: the claim {problem}", "write it as pvc://<claim>/<path> with the "
                        "PersistentVolumeClaim's name")
    _segments_problem(uri, path)
    return ModelUri(uri, "pvc", claim, path)


def _hf(uri: str, rest: str) -> ModelUri:
    parts = rest.split("/")
    fix = "write it as hf://<owner>/<model>[:<revision>]"
    if len(parts) != 2 or not parts[0] or not parts[1].partition(":")[0]:
        raise _UriError(f"{uri!r}: the storage initializer wants exactly hf://<owner>/<model>[:<revision>]", fix)
    model, _, _revision = parts[1].partition(":")
    repo_id = f"{parts[0]}/{model}"
    validate_repo_id: Callable[[str], None] | None
    try:  # the rule the download itself applies
        from huggingface_hub.utils import validate_repo_id  # type: ignore[attr-defined]
    except ImportError:  # pragma: no cover - kserve-storage depends on huggingface_hub
        validate_repo_id = None
    if validate_repo_id is not None:
        try:
            validate_repo_id(repo_id)
        except Exception as exc:  # HFValidationError
            raise _UriError(f"{uri!r}: {repo_id!r} is not a Hugging Face repository id: {exc}", fix) from None
    return ModelUri(uri, "hf", parts[0], parts[1])


def _oci(uri: str, rest: str) -> ModelUri:
    if not _OCI_REF.fullmatch(rest) or "/" not in rest:
        raise _UriError(f"{uri!r}: {rest!r} is not an image reference", "write it as "
                        "oci://<registry>/<repository>:<tag> (or @sha256:<digest>)")
    repo, _, tag = rest.rpartition(":") if ":" in rest.rsplit("/", 1)[-1] else (rest, "", "")
    return ModelUri(uri, "oci", repo, tag)


def image_problem(value: Any) -> str | None:
    """Why ``value`` is not a container image reference (``[registry/]repo[:tag][@digest]``, ASCII), or None."""
    if not isinstance(value, str):
        return f"{value!r} is not an image reference"
    problem = plain_text_problem(value, what="the image")
    if problem:
        return problem
    if not _OCI_REF.fullmatch(value):
        return f"{value!r} is not an image reference ([registry/]repository[:tag][@sha256:digest], lowercase)"
    return None


def _http(uri: str, rest: str) -> ModelUri:
    scheme = uri.split("://", 1)[0]
    host, _, path = rest.partition("/")
    if not host or host.startswith(("@", ":")):
        raise _UriError(f"{uri!r} names no host", f"write it as {_FORMS[scheme]}")
    if _AZURE.fullmatch(uri) or _GIT.fullmatch(uri):
        return ModelUri(uri, scheme, host, path)
    name = path.split("?", 1)[0].split("#", 1)[0].rsplit("/", 1)[-1]
    if not name:
        raise _UriError(f"{uri!r} has no file name: the storage initializer downloads one file (or archive) "
                        "from an http(s) URI", f"write it as {_FORMS[scheme]} (e.g. .../model.joblib or "
                        ".../model.tar.gz)")
    _segments_problem(uri, path.split("?", 1)[0])
    return ModelUri(uri, scheme, host, path)


def _plain_path(uri: str, rest: str) -> ModelUri:
    scheme = uri.split("://", 1)[0]
    if not rest.strip("/"):
        raise _UriError(f"{uri!r} names no path", f"write it as {_FORMS[scheme]}")
    _segments_problem(uri, rest)
    return ModelUri(uri, scheme, "", rest)


_PER_SCHEME = {
    "s3": lambda uri, rest: _bucket(uri, "s3", rest), "gs": lambda uri, rest: _bucket(uri, "gs", rest),
    "pvc": _pvc, "hf": _hf, "oci": _oci, "https": _http, "http": _http,
    "hdfs": _plain_path, "webhdfs": _plain_path, "file": _plain_path,
}  # fmt: skip


def parse_storage_uri(uri: Any, *, source: str = "<cli>", field: str = "--storage-uri",
                      schemes: tuple[str, ...] = (*STORAGE_SCHEMES, "mnt")) -> ModelUri:
    """Parse ``uri`` by the storage initializer's rules (see the module docstring for the sources).

    Args:
        uri: the URI (any type: a non-string is refused).
        source: where it came from, for the error (``<cli>``, a file, ``<payload>``).
        field: the parameter or field path, for the error.
        schemes: the schemes this consumer takes (default: every one KServe reads, plus ``mnt`` for
            ``/mnt/models``); e.g. ``("s3", "gs")`` where kaiops itself must list the objects.

    Returns:
        :class:`ModelUri`.

    Raises:
        InputError: empty, whitespace or non-ASCII characters, no or an unknown scheme, no bucket/claim/host,
            an invalid bucket, claim, Hugging Face id or image reference, ``.``/``..`` segments, an http(s) URI
            without a file name.
    """
    try:
        return _parse(uri, schemes)
    except _UriError as exc:
        raise InputError(source, field, exc.problem, exc.fix) from None


def uri_validator(schemes: tuple[str, ...]) -> Callable[[str], str]:
    """A pydantic ``AfterValidator`` accepting storage URIs of ``schemes`` (``ValueError`` with the fix)."""
    def check(value: str) -> str:
        _parse(value, schemes)
        return value
    return check
