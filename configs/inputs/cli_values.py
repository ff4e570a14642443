"""Command-line values: files, directories, URLs, hosts, block references, timezones, model formats, Ray
addresses. Each parser raises :class:`~configs.errors.InputError` naming the source, the field and the fix.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from configs.errors import InputError
from configs.inputs.text import plain_text_problem


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
