"""Reading a config file into its pydantic model, with one kind of error for every way it can be wrong.

Every loader in ``configs/`` goes through :func:`load_model`, so a missing file, broken YAML, a top level that is
not a mapping and a wrong field all come back as :class:`tasks.errors.InputError` naming the file, the dotted
field path and the fix (the CLI turns it into exit code 2 before anything changes).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from configs.errors import InputError

M = TypeVar("M", bound=BaseModel)


def field_path(loc: tuple[Any, ...] | list[Any]) -> str:
    """``("head", "resources", "cpu")`` -> ``head.resources.cpu`` (``<root>`` for the file itself)."""
    return ".".join(str(p) for p in loc) or "<root>"


def load_model(
    path: str | Path,
    model: type[M],
    *,
    example: str,
    fix_for: Callable[[dict[str, Any]], str] | None = None,
) -> M:
    """Read YAML file ``path`` and validate it as ``model``.

    Args:
        path: the file.
        model: the pydantic model (``extra="forbid"``, so unknown keys are errors).
        example: a file or command to point the user at, e.g. ``configs/canary/default.yaml``.
        fix_for: optional ``(pydantic error dict) -> fix`` for messages better than the default.

    Returns:
        The validated model.

    Raises:
        InputError: the file cannot be read, is not YAML, is not a mapping, or a field is wrong (the first wrong
            field names the path; up to three more are listed in the message).
    """
    source = str(path)
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        problem = f"cannot read the file: {exc.strerror}"
        raise InputError(source, "<root>", problem, f"pass an existing file such as {example}") from exc
    except UnicodeDecodeError as exc:  # a binary file: read_text() fails before YAML sees it
        raise InputError(source, "<root>", f"not UTF-8 text (byte {exc.start})",
                         f"pass a YAML file such as {example}") from exc
    except yaml.YAMLError as exc:
        raise InputError(source, "<root>", f"not valid YAML: {exc}", "fix the YAML syntax") from exc
    if not isinstance(raw, dict):
        raise InputError(source, "<root>", "the file is not a mapping", f"write it as a YAML mapping, like {example}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        # An unknown key first: a misspelt key is the likeliest cause of a "missing" one beside it.
        errors: list[dict[str, Any]] = sorted((dict(e) for e in exc.errors(include_url=False)),
                                             key=lambda e: e["type"] != "extra_forbidden")
        first = errors[0]
        more = ""
        if len(errors) > 1:
            more = f" (and {len(errors) - 1} more: " + "; ".join(
                f"{field_path(e['loc'])}: {e['msg']}" for e in errors[1:4]) + ")"
        fix = _fix(first, example, fix_for)
        hint = _did_you_mean(first, errors)
        raise InputError(source, field_path(first["loc"]), first["msg"] + more, f"{hint}{fix}") from exc


def _did_you_mean(error: dict[str, Any], errors: list[dict[str, Any]]) -> str:
    """``did you mean 'replicas'? `` when an unknown key is close to a required key missing beside it."""
    if error["type"] != "extra_forbidden":
        return ""
    parent, key = tuple(error["loc"][:-1]), str(error["loc"][-1])
    missing = [str(e["loc"][-1]) for e in errors if e["type"] == "missing" and tuple(e["loc"][:-1]) == parent]
    close = difflib.get_close_matches(key, missing, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


def _fix(error: dict[str, Any], example: str, fix_for: Callable[[dict[str, Any]], str] | None) -> str:
    if fix_for is not None:
        return fix_for(error)
    if error["type"] == "extra_forbidden":
        return f"remove the key (it is not a field here; see {example})"
    return f"see {example} for allowed values"
