"""Progress reporting: the API reports to an object with start/advance/done; the CLI shows it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

BYTES, OBJECTS = "bytes", "objects"


class NullProgress:
    def start(self, label: str, total: int, unit: str = BYTES) -> None:
        pass

    def advance(self, amount: int) -> None:
        pass

    def done(self) -> None:
        pass


NULL = NullProgress()


class RichProgress:
    """A rich progress bar on stderr (only used when stderr is a terminal)."""

    def __init__(self) -> None:
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def start(self, label: str, total: int, unit: str = BYTES) -> None:
        """``total`` is in ``unit``: bytes show as sizes and speeds, objects as counts."""
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        self.done()
        columns = [TextColumn("{task.description}"), BarColumn()]
        if unit == BYTES:
            columns += [DownloadColumn(binary_units=True), TransferSpeedColumn()]
        else:
            columns += [MofNCompleteColumn(), TextColumn(unit)]
        self._bar = Progress(*columns, TimeRemainingColumn(), console=Console(stderr=True), transient=True)
        self._bar.start()
        self._task = self._bar.add_task(label, total=total)

    def advance(self, amount: int) -> None:
        if self._bar is not None and self._task is not None:  # both set by start()
            self._bar.advance(self._task, amount)

    def done(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
