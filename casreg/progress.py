"""Progress reporting: the API reports to an object with start/advance/done; the CLI shows it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


class NullProgress:
    def start(self, label: str, total: int) -> None:
        pass

    def advance(self, amount: int) -> None:
        pass

    def done(self) -> None:
        pass


NULL = NullProgress()


class RichProgress:
    """A rich progress bar on stderr (only used when stderr is a terminal)."""

    def __init__(self, unit_bytes: bool = True):
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self.unit_bytes = unit_bytes

    def start(self, label: str, total: int) -> None:
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
        if self.unit_bytes and label != "verify":
            columns += [DownloadColumn(), TransferSpeedColumn()]
        else:
            columns += [MofNCompleteColumn()]
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
