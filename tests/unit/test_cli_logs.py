"""Expected failures are logged in one line (no traceback); bugs keep theirs."""

from __future__ import annotations

import logging

import pytest

from flows.logs import ExpectedFailureFilter, quiet_expected_failures
from tasks.errors import InputError


def _record(exc: BaseException) -> logging.LogRecord:
    try:
        raise exc
    except BaseException as caught:
        return logging.LogRecord("prefect.flow_runs", logging.ERROR, __file__, 1,
                                 "Encountered exception during execution: %r", (caught,),
                                 (type(caught), caught, caught.__traceback__))


@pytest.mark.unit
def test_a_kaiops_error_loses_its_traceback_but_keeps_its_message() -> None:
    record = _record(InputError("policy.yaml", "steps", "must end at 100", "add 100"))
    assert ExpectedFailureFilter().filter(record) is True
    text = logging.Formatter().format(record)
    assert "Traceback" not in text and "must end at 100" in text


@pytest.mark.unit
def test_a_bug_keeps_its_traceback() -> None:
    record = _record(ZeroDivisionError("boom"))
    ExpectedFailureFilter().filter(record)
    assert "Traceback" in logging.Formatter().format(record)


@pytest.mark.unit
def test_kaiops_tracebacks_keeps_every_traceback(monkeypatch) -> None:
    logger = logging.getLogger("prefect.task_runs")
    monkeypatch.setattr(logger, "filters", [])
    monkeypatch.setenv("KAIOPS_TRACEBACKS", "1")
    quiet_expected_failures()
    assert logger.filters == []
    monkeypatch.delenv("KAIOPS_TRACEBACKS")
    quiet_expected_failures()
    quiet_expected_failures()
    assert [type(f) for f in logger.filters] == [ExpectedFailureFilter]
