"""A failure budget: how much of one run's time a failing server may cost before the run
stops trying it.

Retries with backoff make one failure cheap to survive and a server that fails slowly
expensive: a hung mail server or listing host costs a timeout per attempt, for every
reader or every page. The budget adds up, per server, the seconds lost in failed attempts
and in the waits between them; once they pass the budget, the server is not tried again
in this run, and what it was needed for is left for the next run.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class FailureBudget:
    """Seconds of failures each server may cost a run (``seconds``), and what each cost."""

    seconds: float
    spent: dict[str, float] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)  # calls not made, per server
    closed: set[str] = field(default_factory=set)  # given up on before the budget ran out

    def charge(self, server: str, seconds: float) -> None:
        """Count ``seconds`` lost to a failure of ``server`` (a failed attempt, a wait)."""
        self.spent[server] = self.spent.get(server, 0.0) + max(0.0, seconds)

    def left(self, server: str) -> float:
        """Seconds of failures ``server`` may still cost; at most 0 once it is spent."""
        return self.seconds - self.spent.get(server, 0.0)

    def exhausted(self, server: str) -> bool:
        return self.left(server) <= 0 or server in self.closed

    def close(self, server: str) -> None:
        """Give up on ``server`` now: it asks for a wait longer than its budget has left."""
        self.closed.add(server)

    def refuse(self, server: str) -> str:
        """Count one call not made because ``server`` is given up on; say why."""
        self.refused[server] = self.refused.get(server, 0) + 1
        return self.verdict(server)

    def verdict(self, server: str) -> str:
        return f"gave up on {server} after {self.spent.get(server, 0.0):.0f} s of failures"

    def given_up(self) -> list[str]:
        """The servers this run stopped trying, in the order they failed first."""
        return [server for server in self.spent if self.exhausted(server)]
