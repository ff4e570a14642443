"""Parsers for the values a user hands kaiops: storage URIs, Kubernetes names, numbers, paths, versions.

One place for the rules, used by the CLI (before anything is written), by the flows' parameters (pydantic
``Annotated`` types at the flow boundary, so a Prefect UI run is checked the same way) and by the registry
receiver's payload parser. Every parser raises :class:`tasks.errors.InputError` naming the source (file,
``<cli>``, ``<payload>``), the field and the fix; the ``Annotated`` types raise ``ValueError`` with the same
words, which pydantic turns into a validation error at the field.

Sources of the rules:

- storage URIs: kserve-storage 0.20.0 ``kserve_storage.Storage.download`` (the dispatch on ``gs://``, ``s3://``,
  ``hdfs://``, ``webhdfs://``, the Azure blob/file patterns, ``hf://``, git and the ``https?://(.+)/(.+)``
  catch-all; ``_download_hf`` wants exactly ``owner/model[:revision]``; ``_download_from_uri`` wants a file
  name in the path), KServe v0.20.0 ``pkg/controller/v1beta1/inferenceservice/utils/utils.go``
  (``SupportedStorageURIPrefixList``: adds ``pvc://``, ``oci://``, ``oci+native://``), ``pkg/utils/storage.go``
  (``ParsePvcURI``: ``pvc://<claim>[/path]``; ``ParseOciScheme``: ``oci+<mode>://``). Bucket names: the S3
  and GCS naming rules. OCI references: the distribution ``reference`` grammar.
- Kubernetes names: ``k8s.io/apimachinery/pkg/util/validation`` (``IsDNS1123Label``, ``IsDNS1123Subdomain``,
  ``IsDNS1035Label``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from configs.errors import InputError

# ----------------------------------------------------------------------------------------------------------
# Text in general


def _describe_char(ch: str) -> str:
    """``'\\uff11' (U+FF11 FULLWIDTH DIGIT ONE)`` for a fullwidth one."""
    return f"{ch!r} (U+{ord(ch):04X} {unicodedata.name(ch, 'unnamed')})"


def plain_text_problem(value: str, *, what: str = "the value") -> str | None:
    """Why ``value`` is not plain, printable ASCII without whitespace (None when it is).

    Catches the bad input that looks right on a screen: empty or blank values, leading/trailing or inner
    whitespace, control characters and non-ASCII look-alikes (a Cyrillic ``\\u0455`` for ``s``, a fullwidth
    ``\\uff11`` for ``1``).
    """
    if not value:
        return f"{what} is empty"
    if not value.strip():
        return f"{what} is only whitespace"
    for ch in value:
        if ch.isspace():
            return f"{what} contains whitespace ({_describe_char(ch)})"
        if not ch.isprintable():
            return f"{what} contains a control character ({_describe_char(ch)})"
        if not ch.isascii():
            return f"{what} contains the non-ASCII character {_describe_char(ch)}, which only looks like ASCII"
    return None


# ----------------------------------------------------------------------------------------------------------
# Kubernetes names

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
_NAME_RULES = {
    "label": (_DNS1123_LABEL, 63, "lowercase letters, digits and '-', starting and ending with a letter or digit"),
    "subdomain": (_DNS1123_SUBDOMAIN, 253, "lowercase letters, digits, '-' and '.', each part starting and "
                  "ending with a letter or digit"),
    "dns1035": (_DNS1035_LABEL, 63, "lowercase letters, digits and '-', starting with a letter and ending with a "
                "letter or digit"),
}


def name_problem(value: Any, rule: str = "label", max_length: int | None = None) -> str | None:
    """Why ``value`` is not a Kubernetes name under ``rule`` (``label`` = DNS-1123 label, namespaces and most
    names; ``subdomain`` = DNS-1123 subdomain, e.g. PVCs, Secrets; ``dns1035`` = Services, RayClusters), or None.

    ``max_length`` overrides the rule's limit (e.g. 53 for RayCluster names, whose Services add suffixes).
    """
    if not isinstance(value, str):
        return f"{value!r} is a {type(value).__name__}, not a name"
    pattern, limit, words = _NAME_RULES[rule]
    limit = max_length or limit
    problem = plain_text_problem(value, what="the name")
    if problem:
        return problem
    if len(value) > limit:
        return f"{value!r} is {len(value)} characters long, more than {limit}"
    if not pattern.fullmatch(value):
        return f"{value!r} is not a valid name: use {words}"
    return None


def check_name(value: Any, *, source: str, field: str, rule: str = "label", max_length: int | None = None) -> str:
    """Return ``value`` when it is a valid Kubernetes name (see :func:`name_problem`).

    Raises:
        InputError: naming ``source``/``field``, with a suggested valid name when one can be derived.
    """
    problem = name_problem(value, rule, max_length)
    if problem is None:
        return str(value)
    raise InputError(source, field, problem, _name_fix(value, rule))


def _name_fix(value: Any, rule: str) -> str:
    if isinstance(value, str):
        ascii_ = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode().lower()
        guess = re.sub(r"[^a-z0-9-.]" if rule == "subdomain" else r"[^a-z0-9-]", "-", ascii_).strip("-.")[:63]
        if guess and name_problem(guess, rule) is None:
            return f"write it as e.g. {guess!r}"
    return "use lowercase letters, digits and '-' (e.g. 'my-model')"


def _name_validator(rule: str, max_length: int | None = None) -> Callable[[str], str]:
    def check(value: str) -> str:
        problem = name_problem(value, rule, max_length)
        if problem:
            raise ValueError(f"{problem} (fix: {_name_fix(value, rule)})")
        return value
    return check


# ----------------------------------------------------------------------------------------------------------
# Storage URIs (what KServe's storage initializer reads)

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


def _uri_validator(schemes: tuple[str, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        _parse(value, schemes)
        return value
    return check


# ----------------------------------------------------------------------------------------------------------
# Numbers written as text (payloads, annotations)

_ASCII_INT = re.compile(r"[0-9]+")


def positive_int(value: Any, *, source: str, field: str, maximum: int = 2**31 - 1) -> int:
    """An integer ``1..maximum`` given as a JSON number or a string of ASCII digits.

    ``str.isdigit()`` is true for superscript two (U+00B2) and Arabic-Indic three (U+0663), and ``int()`` takes
    the Arabic-Indic and fullwidth digits but not the superscript: every non-ASCII digit is refused
    here, as are booleans, floats, signs and whitespace ('007' is 7).

    Raises:
        InputError: naming ``source``/``field`` and the fix.
    """
    fix = "send a positive whole number in ASCII digits, e.g. \"3\""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InputError(source, field, f"{value!r} is a {type(value).__name__}, not a whole number", fix)
    if isinstance(value, str):
        problem = plain_text_problem(value)
        if problem or not _ASCII_INT.fullmatch(value):
            raise InputError(source, field, f"{value!r} is not written in ASCII digits"
                             + (f": {problem}" if problem else ""), fix)
        if len(value) > 19:
            raise InputError(source, field, f"{value[:24]}... has {len(value)} digits, more than {maximum}", fix)
        value = int(value)
    if not 1 <= value <= maximum:
        raise InputError(source, field, f"{value} is outside 1..{maximum}", fix)
    return int(value)


# ----------------------------------------------------------------------------------------------------------
# pydantic types for flow parameters (the flow boundary: Prefect validates them, the UI shows the description)


K8sName = Annotated[str, AfterValidator(_name_validator("label")),
                    Field(description="A Kubernetes name (DNS-1123 label: lowercase letters, digits, '-').",
                          max_length=63)]
Namespace = Annotated[str, AfterValidator(_name_validator("label")),
                      Field(description="A Kubernetes namespace (DNS-1123 label).", max_length=63)]
StorageUri = Annotated[str, AfterValidator(_uri_validator((*STORAGE_SCHEMES, "mnt"))),
                       Field(description="Model location as the KServe storage initializer reads it: s3://, gs://, "
                             "pvc://, hf://, oci://, https:// ...", max_length=2048)]
BucketUri = Annotated[str, AfterValidator(_uri_validator(("s3", "gs"))),
                      Field(description="s3://<bucket>/<prefix> or gs://<bucket>/<prefix>.", max_length=2048)]


# ----------------------------------------------------------------------------------------------------------
# Command-line values: files, directories, URLs, hosts, block references, timezones


def existing_file(value: Any, *, field: str, example: str, source: str = "<cli>") -> Path:
    """``value`` as the path of an existing regular file (a config kaiops reads).

    Raises:
        InputError: empty or blank, missing, a directory, not a path.
    """
    text = str(value) if isinstance(value, (str, Path)) else None
    if text is None:
        raise InputError(source, field, f"{value!r} is not a path", f"pass a file such as {example}")
    if not text.strip() or text in (".", ".."):
        raise InputError(source, field, f"{text!r} names no file", f"pass a file such as {example}")
    path = Path(text)
    if path.is_dir():
        raise InputError(source, field, f"{text} is a directory", f"pass a file such as {example}")
    if not path.is_file():
        raise InputError(source, field, f"{text} does not exist", f"pass an existing file such as {example}")
    return path


def existing_dir(value: Any, *, field: str, example: str, source: str = "<cli>") -> Path:
    """``value`` as the path of an existing directory (a directory kaiops reads).

    Raises:
        InputError: empty or blank, missing, a file.
    """
    text = str(value) if isinstance(value, (str, Path)) else ""
    if not text.strip():
        raise InputError(source, field, f"{text!r} names no directory", f"pass a directory such as {example}")
    path = Path(text)
    if not path.is_dir():
        what = "a file" if path.exists() else "missing"
        raise InputError(source, field, f"{text} is {what}, not a directory", f"pass a directory such as {example}")
    return path


def output_dir(value: Any, *, field: str, source: str = "<cli>") -> Path:
    """``value`` as a directory kaiops may create and write reports into: an existing directory, or a path
    whose nearest existing ancestor is a directory. Nothing is created here.

    Raises:
        InputError: empty, an existing file, or below a file.
    """
    text = str(value) if isinstance(value, (str, Path)) else ""
    if not text.strip():
        raise InputError(source, field, f"{text!r} names no directory", "pass a directory, e.g. ./out")
    path = Path(text)
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        where = "is a file" if probe == path else f"is below the file {probe}"
        raise InputError(source, field, f"{text} {where}", "pass a directory (new or existing), e.g. ./out")
    return path


def new_file(value: Any, *, field: str, source: str = "<cli>") -> Path:
    """``value`` as a file kaiops may create (a state file): not a directory, its parent not below a file.

    Raises:
        InputError: empty, a directory, or below a file.
    """
    text = str(value) if isinstance(value, (str, Path)) else ""
    if not text.strip():
        raise InputError(source, field, f"{text!r} names no file", "pass a file path, e.g. .kaiops/state.sqlite")
    path = Path(text)
    if path.is_dir():
        raise InputError(source, field, f"{text} is a directory", "pass a file path inside it")
    output_dir(path.parent, field=field, source=source)
    return path


def http_url(value: Any, *, field: str, example: str, source: str = "<cli>") -> str:
    """``value`` as an ``http://`` or ``https://`` URL with a host (and a numeric port, if any).

    Raises:
        InputError: empty, whitespace or non-ASCII characters, another scheme, no host, a bad port.
    """
    from urllib.parse import urlsplit

    fix = f"pass e.g. {example}"
    text = value if isinstance(value, str) else ""
    problem = plain_text_problem(text, what="the URL")
    if problem:
        raise InputError(source, field, f"{text!r}: {problem}", fix)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise InputError(source, field, f"{text!r} is not an http:// or https:// URL", fix)
    try:
        port = parts.port
        host = parts.hostname
    except ValueError as exc:
        raise InputError(source, field, f"{text!r}: {exc}", fix) from None
    if not host or (port is not None and not 0 < port < 65536):
        raise InputError(source, field, f"{text!r} names no host" if not host else f"{text!r}: port {port}", fix)
    return text


_HOSTNAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}"
                       r"[A-Za-z0-9])?)*")


def listen_host(value: Any, *, field: str = "--host", source: str = "<cli>") -> str:
    """``value`` as an address to listen on: an IP address or a host name (RFC 1123).

    Raises:
        InputError: empty, whitespace, look-alikes, neither an IP address nor a host name.
    """
    import ipaddress

    text = value if isinstance(value, str) else ""
    problem = plain_text_problem(text, what="the host")
    if problem is None:
        try:
            ipaddress.ip_address(text)
            return text
        except ValueError:
            if _HOSTNAME.fullmatch(text):
                return text
            problem = f"{text!r} is neither an IP address nor a host name"
    raise InputError(source, field, problem, "pass an address such as 127.0.0.1")


_BLOCK_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def block_ref(value: Any, *, field: str, types: tuple[str, ...], source: str = "<cli>") -> str:
    """``value`` as a Prefect block reference ``<block type>/<block name>`` with a type from ``types``.

    Raises:
        InputError: not TYPE/NAME, an unknown type, a name that is not a Prefect block name.
    """
    text = value if isinstance(value, str) else ""
    kind, sep, name = text.partition("/")
    fix = f"write {types[0]}/<name> (block name: lowercase letters, digits, '-')"
    problem = plain_text_problem(text, what="the block reference")
    if problem or not sep:
        raise InputError(source, field, problem or f"{text!r} is not <block type>/<block name>", fix)
    if kind not in types:
        raise InputError(source, field, f"{kind!r} is not a block type this option takes ({', '.join(types)})", fix)
    if not _BLOCK_NAME.fullmatch(name):
        raise InputError(source, field, f"{name!r} is not a Prefect block name", fix)
    return text


def timezone_name(value: Any, *, field: str = "--timezone", source: str = "<cli>") -> str:
    """``value`` as an IANA timezone name (``Europe/Berlin``, ``UTC``).

    Raises:
        InputError: empty, whitespace, a path, or not in the timezone database.
    """
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    text = value if isinstance(value, str) else ""
    problem = plain_text_problem(text, what="the timezone")
    if problem is None and (".." in text or text.startswith("/")):
        problem = f"{text!r} is a path, not a timezone name"
    if problem is None:
        try:
            ZoneInfo(text)
            return text
        except (ZoneInfoNotFoundError, ValueError):
            problem = f"{text!r} is not in the timezone database"
    raise InputError(source, field, problem, "use an IANA name such as Europe/Berlin or UTC")


_FORMAT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def model_format(value: Any, *, field: str = "--model-format", source: str = "<cli>") -> str:
    """``value`` as a KServe ``modelFormat.name`` (``sklearn``, ``xgboost``, ``huggingface`` ...).

    Raises:
        InputError: empty, whitespace, look-alikes or other characters.
    """
    text = value if isinstance(value, str) else ""
    problem = plain_text_problem(text, what="the model format")
    if problem is None and not _FORMAT.fullmatch(text):
        problem = f"{text!r} is not a model format name (letters, digits, '.', '_', '-')"
    if problem:
        raise InputError(source, field, problem, "pass the ServingRuntime's format name, e.g. sklearn")
    return text


def ray_address_problem(value: str) -> str | None:
    """Why ``value`` is not an address ``ray.init`` connects to (``host:port`` or ``ray://host:port``)."""
    problem = plain_text_problem(value, what="the address")
    if problem:
        return problem
    rest = value[len("ray://"):] if value.startswith("ray://") else value
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isascii() or not port.isdigit() or not 0 < int(port) < 65536:
        return f"{value!r} is not host:port or ray://host:port"
    return None


# ----------------------------------------------------------------------------------------------------------
# Seconds


def seconds_problem(value: Any, *, minimum: float = 0.0, maximum: float = 86400.0) -> str | None:
    """Why ``value`` is not a finite number of seconds in ``(minimum, maximum]`` (None when it is)."""
    import math

    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{value!r} is not a number of seconds"
    if math.isnan(value) or math.isinf(value):
        return f"{value} is not a finite number of seconds"
    if not minimum < value <= maximum:
        return f"{value:g} s is outside ({minimum:g}, {maximum:g}]"
    return None


def check_seconds(value: Any, *, field: str, minimum: float = 0.0, maximum: float = 86400.0,
                  source: str = "<cli>") -> float:
    """Return ``value`` when :func:`seconds_problem` finds nothing.

    Raises:
        InputError: naming ``field``.
    """
    problem = seconds_problem(value, minimum=minimum, maximum=maximum)
    if problem:
        raise InputError(source, field, problem, f"pass a number of seconds above {minimum:g}, at most {maximum:g}")
    return float(value)


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
