"""Progress sinks for uploads: a rich bar for terminals (bytes, rate, ETA) and a Prefect progress artifact."""

from __future__ import annotations

import time
from typing import Any

from tasks.storage.publisher import ProgressSink


class RichProgress(ProgressSink):
    """A rich progress bar on stderr: transferred bytes, rate, ETA."""

    def __init__(self, description: str = "upload") -> None:
        self.description = description
        self._bar: Any = None
        self._task: Any = None

    def start(self, total_bytes: int, total_files: int) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(),
                             TransferSpeedColumn(), TimeRemainingColumn(), console=Console(stderr=True),
                             transient=False)
        self._bar.start()
        self._task = self._bar.add_task(f"{self.description} ({total_files} files)", total=total_bytes or 1)

    def advance(self, nbytes: int) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, nbytes)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


class PrefectProgress(ProgressSink):
    """A Prefect progress artifact (percent), updated at most every ``interval`` seconds; needs a run context."""

    def __init__(self, key: str, description: str, interval: float = 1.0) -> None:
        self.key, self.description, self.interval = key, description, interval
        self._id: Any = None
        self._total = 1
        self._sent = 0
        self._last = 0.0

    def start(self, total_bytes: int, total_files: int) -> None:
        from prefect.artifacts import create_progress_artifact

        self._total = max(1, total_bytes)
        self._id = create_progress_artifact(0.0, key=self.key, description=self.description)

    def advance(self, nbytes: int) -> None:
        self._sent += nbytes
        now = time.monotonic()
        if self._id is not None and now - self._last >= self.interval:
            self._last = now
            self._update()

    def _update(self) -> None:
        from prefect.artifacts import update_progress_artifact

        update_progress_artifact(self._id, min(100.0, 100.0 * self._sent / self._total))

    def finish(self) -> None:
        if self._id is not None:
            self._update()


class Fanout(ProgressSink):
    """Sends every event to several sinks."""

    def __init__(self, *sinks: ProgressSink) -> None:
        self.sinks = sinks

    def start(self, total_bytes: int, total_files: int) -> None:
        for s in self.sinks:
            s.start(total_bytes, total_files)

    def advance(self, nbytes: int) -> None:
        for s in self.sinks:
            s.advance(nbytes)

    def finish(self) -> None:
        for s in self.sinks:
            s.finish()
