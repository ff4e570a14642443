"""Exporting a sandbox's environment (KUBECONFIG, AWS_*, PROMETHEUS_URL, ...) for a block of tests."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def exported(values: dict[str, str]) -> Iterator[dict[str, str]]:
    """Put ``values`` into ``os.environ`` for the block and yield them; afterwards restore what was there."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield values
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
