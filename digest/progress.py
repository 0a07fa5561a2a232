"""Progress on the terminal during long fetches: a rich status line, only for people.

Nothing is shown when stderr is not a terminal (cron, pipes, CI) or when the caller asked
for quiet or JSON output, so logs and reports stay clean.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console


def _silent(_message: str) -> None:
    pass


@contextmanager
def terminal_progress(enabled: bool) -> Iterator[Callable[[str], None]]:
    """Yield a function that shows a message as the current step, or does nothing."""
    if not enabled or not sys.stderr.isatty():
        yield _silent
        return
    console = Console(stderr=True)
    with console.status("starting", spinner="dots") as status:
        yield lambda message: status.update(message)
