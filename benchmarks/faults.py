"""Kill `digest run` at random moments, run it again, and count what the readers got.

    python benchmarks/faults.py [--kills 100] [--seed 1] [--subscribers 12] [--papers 30] [--json]

Four scenarios share the kills: ``[run] workers = 1`` and ``= 2``, each with email by SMTP
(a real aiosmtpd server on loopback, in this process, that keeps every message it
accepts) and with email as ``.eml`` files. Each scenario has its own folder with a config,
a ``file`` source and a store, and the listings are written here (benchmarks/workload.py:
a new day of papers for every cycle). A cycle starts a real `digest run` for its day,
SIGKILLs it (as the OOM killer does it) after a random delay, drawn from a seeded
generator and printed, between 0 and the time a whole run took, and then runs `digest
run` again to completion. At the end, what every reader received is compared with what
the store says was chosen for it:

- locked out: a run after a kill that exited 3 (the lock held) or could not start;
- left behind: processes of a killed run still alive two seconds after the kill;
- papers lost: chosen for a reader per the store, in no email it received or was written;
- papers doubled: the same paper for the same reader in two different digests;
- messages doubled: the same Message-ID received twice (SMTP; a file of the same name is
  rewritten, not received again);
- kills in the window: kills that landed after the server's 250 (or the .eml file's
  rename) and before the store recorded the delivery; only their messages may come twice.

Everything goes through the command line and the config; the store is only read
(SQLite, read-only) to know what was chosen and recorded. So that a run's time is spent
in the run rather than in starting Python, each `digest run` is a process forked from a
loader that has imported paper-digest (``--loader``): it runs the command line's own
entry point with the run's arguments, forks its workers, and is SIGKILLed by its pid.
With ``--fresh``, each run is a new `python -m digest run` instead.
"""

from __future__ import annotations

import argparse
import contextlib
import email
import json
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workload import Workload

from digest.models import digest_slug

FIRST_DAY = date(2026, 1, 5)
ARXIV_LINK = re.compile(r"arxiv\.org/abs/(\d{4}\.\d{4,5})")
SCENARIOS = [(1, "smtp"), (1, "files"), (2, "smtp"), (2, "files")]
MAX_PAPERS = 30  # enough for some digests to pass the size limit of one email
LEFT_BEHIND_PATIENCE = 2.0  # seconds a killed run's processes get to end


@dataclass
class Tally:
    """What one scenario measured; the JSON and the table print these fields."""

    scenario: str
    kills: int = 0
    finished_before_kill: int = 0
    locked_out: int = 0
    left_behind: int = 0
    runs_failed: int = 0
    papers_chosen: int = 0
    papers_lost: int = 0
    papers_doubled: int = 0
    messages: int = 0
    messages_doubled: int = 0
    kills_in_window: int = 0
    messages_in_window: int = 0
    pending_at_end: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Received:
    """One message as a reader got it: whose, which Message-ID, which day's cycle, which
    papers it lists."""

    reader: str
    message_id: str
    day: date
    papers: frozenset[str]


def papers_in(message: EmailMessage) -> frozenset[str]:
    """The arXiv ids an email's plain-text part links to."""
    body = message.get_body(preferencelist=("plain",))
    text = body.get_content() if body is not None else ""
    return frozenset(ARXIV_LINK.findall(text))


class Mailbox:
    """An aiosmtpd handler that accepts every message and keeps what each reader got."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.day = FIRST_DAY  # the cycle now running, set by its scenario

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(
            envelope.original_content or envelope.content, policy=policy.default
        )
        assert isinstance(message, EmailMessage)
        papers = papers_in(message)
        with self.lock:
            for address in envelope.rcpt_tos:
                reader = address.split("@", 1)[0]
                self.received.append(Received(reader, str(message["Message-ID"]), self.day, papers))
        return "250 2.0.0 Queued"


def slug_of(message_id: str) -> str:
    """The digest a Message-ID names: ``<digest.SLUG.TOKEN@domain>`` gives SLUG."""
    return message_id.split("@", 1)[0].split(".")[1]


def written(out: Path) -> list[Received]:
    """The .eml files of the files transport, as messages received."""
    found = []
    for path in sorted((out / "email").rglob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(message, EmailMessage)
        day = date.fromisoformat(path.name[:10])
        found.append(
            Received(path.parent.name, str(message["Message-ID"]), day, papers_in(message))
        )
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Run:
    """A `digest run` process: its pid, whether it has ended, its exit status."""

    def __init__(self, pid: int, reap: Any) -> None:
        self.pid = pid
        self._reap = reap
        self.status: int | None = None

    def ended(self) -> bool:
        try:
            return _zombie(Path(f"/proc/{self.pid}"))
        except OSError:
            return True

    def wait(self, timeout: float | None = None) -> int:
        """The exit status (negative: killed by that signal); TimeoutError if still
        running after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.status is None and not self.ended():
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError
            time.sleep(0.01)
        if self.status is None:
            self.status = self._reap(self.pid)
        return self.status

    def kill(self) -> None:
        kill_quietly(self.pid)


class Loader:
    """Starts `digest run` processes: forked from a process that has imported
    paper-digest once (see ``loader_main``), or, ``fresh``, as new Python processes."""

    def __init__(self, marker: Path, fresh: bool) -> None:
        self.fresh = fresh
        self.popen: dict[int, subprocess.Popen[bytes]] = {}
        self.process = None
        if not fresh:
            self.process = subprocess.Popen(
                [sys.executable, __file__, "--loader", str(marker)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert self.process.stdout is not None
            ready = self.process.stdout.readline()  # once it has imported paper-digest
            assert ready.strip() == "ready", ready

    def start(self, argv: list[str], log: Path) -> Run:
        if self.process is None:
            with log.open("a") as err:
                command = [sys.executable, "-m", "digest", *argv]
                popen = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)
            self.popen[popen.pid] = popen
            return Run(popen.pid, lambda pid: self.popen.pop(pid).wait())
        return Run(int(self._ask({"run": argv, "log": str(log)})), self._reap)

    def _reap(self, pid: int) -> int:
        return int(self._ask({"reap": pid}))

    def _ask(self, request: dict[str, Any]) -> str:
        assert self.process is not None and self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def close(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()


def loader_main() -> int:
    """The loader: import paper-digest, then fork a run per request line on stdin
    (``{"run": argv, "log": path}``, answered with its pid) and reap it on request
    (``{"reap": pid}``, answered with its exit status, negative for a signal)."""
    from digest import cli

    print("ready", flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if "reap" in request:
            _pid, status = os.waitpid(request["reap"], 0)
            print(os.waitstatus_to_exitcode(status), flush=True)
            continue
        pid = os.fork()
        if pid == 0:  # the run: stdout to nowhere, stderr to the scenario's log
            null = os.open(os.devnull, os.O_RDWR)
            log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.dup2(null, 0)
            os.dup2(null, 1)
            os.dup2(log, 2)
            code = 0
            try:
                cli.main(args=request["run"], prog_name="digest")
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        print(pid, flush=True)
    return 0


class Scenario:
    """One folder, one config, one store; its cycles of kill and run again."""

    def __init__(self, root: Path, workers: int, channel: str, args: argparse.Namespace) -> None:
        self.name = f"workers={workers} {channel}"
        self.folder = root / f"workers{workers}-{channel}"
        self.channel = channel
        self.args = args
        self.random = random.Random(f"{args.seed}/{self.name}")
        self.tally = Tally(self.name)
        self.mailbox = Mailbox()
        self.controller: Controller | None = None
        self.workload = Workload(args.seed)
        self.folder.mkdir(parents=True)
        (self.folder / "inbox").mkdir()
        self.config = self.folder / "config.toml"
        text = self.workload.config_toml(args.subscribers, ["email", "feed"], workers=workers)
        # Up to 30 papers a digest: the larger ones pass the size limit of one email and go
        # out as several, each confirmed on its own, so kills also land between them.
        text = text.replace("[[subscribers]]\n", f"[[subscribers]]\nmax_papers = {MAX_PAPERS}\n")
        if channel == "smtp":
            port = free_port()
            self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=port)
            self.controller.start()
            text += (
                '[email]\nfrom = "Digest <digest@example.org>"\nhost = "127.0.0.1"\n'
                f'port = {port}\nsecurity = "none"\ntimeout = 10\nretries = 1\nretry_backoff = 0.2\n'
            )
        self.config.write_text(text, encoding="utf-8")
        self.log = self.folder / "runs.log"
        self.loader = Loader(self.config, args.fresh)

    # --- one cycle ----------------------------------------------------------------------

    def run(self, kills: int) -> Tally:
        started = time.monotonic()
        try:
            self.new_day(FIRST_DAY)
            began = time.monotonic()
            self.finish(FIRST_DAY, after_kill=False)  # a whole run: how long one takes
            whole = time.monotonic() - began
            day = FIRST_DAY
            while self.tally.kills < kills:
                day += timedelta(days=1)
                self.new_day(day)
                self.cycle(day, self.random.uniform(0.0, whole))
            self.judge()
        finally:
            if self.controller is not None:
                self.controller.stop()
            self.loader.close()
        self.tally.seconds = round(time.monotonic() - started, 1)
        return self.tally

    def new_day(self, day: date) -> None:
        """Today's listing (replacing yesterday's: the store has those papers)."""
        number = (day - FIRST_DAY).days * self.args.papers + 1
        listing = self.workload.daily_papers_json(self.args.papers, day, first_number=number)
        (self.folder / "inbox" / "daily.json").write_bytes(listing)
        self.mailbox.day = day

    def cycle(self, day: date, delay: float) -> None:
        run = self.start(day)
        try:
            run.wait(timeout=delay)
        except TimeoutError:
            run.kill()
            run.wait()
        else:
            self.tally.finished_before_kill += 1
            say(f"{self.name} {day}: finished within {delay:.2f} s, not killed")
            return
        self.tally.kills += 1
        survivors = self.wait_for_processes_to_end()
        self.tally.left_behind += len(survivors)
        in_window = self.accepted_but_unrecorded(day)
        self.tally.kills_in_window += bool(in_window)
        self.tally.messages_in_window += len(in_window)
        locked_out = self.tally.locked_out
        status = self.finish(day, after_kill=True)
        locked = "locked out, then " if self.tally.locked_out > locked_out else ""
        for pid in survivors:  # ours, left by the killed run: never outlive the harness
            kill_quietly(pid)
        say(
            f"{self.name} {day}: killed after {delay:.2f} s; {len(survivors)} left behind; "
            f"{len(in_window)} accepted but unrecorded; next run {locked}exit {status}"
        )

    def start(self, day: date) -> Run:
        argv = ["-q", "run", "--config", str(self.config), "--date", day.isoformat()]
        with self.log.open("a") as log:
            log.write(f"--- {day}\n")
        return self.loader.start(argv, self.log)

    def finish(self, day: date, *, after_kill: bool) -> int:
        """Run the day to completion; a lock still held is counted, cleared, and run again."""
        status = self.start(day).wait()
        if after_kill and status == 3:
            self.tally.locked_out += 1
            self.tally.notes.append(f"{day}: the run after the kill was locked out")
            for pid in self.processes():
                kill_quietly(pid)
            status = self.start(day).wait()
        if status != 0:
            self.tally.runs_failed += 1
            self.tally.notes.append(f"{day}: a run to completion exited {status}")
        return status

    # --- what the processes, the server and the store say ---------------------------------

    def processes(self) -> list[int]:
        """Live processes running this scenario's config (a run and its forked workers)."""
        found = []
        marker = str(self.config).encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if int(entry.name) == self.loader.pid:
                    continue
                if marker in (entry / "cmdline").read_bytes() and not _zombie(entry):
                    found.append(int(entry.name))
            except OSError:
                continue
        return found

    def wait_for_processes_to_end(self) -> list[int]:
        deadline = time.monotonic() + LEFT_BEHIND_PATIENCE
        while (alive := self.processes()) and time.monotonic() < deadline:
            time.sleep(0.05)
        return alive

    def messages(self) -> list[Received]:
        if self.channel == "smtp":
            with self.mailbox.lock:
                return list(self.mailbox.received)
        return written(self.folder / "out")

    def accepted_but_unrecorded(self, day: date) -> set[tuple[str, str]]:
        """The messages of ``day`` (reader, Message-ID) that the server accepted (or whose
        file is in place) while the store does not record their digest delivered: the kill
        landed in between. Counted per message, since a digest too large for one email is
        several digests of the day, each delivered and recorded on its own."""
        got = {(m.reader, m.message_id) for m in self.messages() if m.day == day}
        with self.store() as db:
            rows = db.execute(
                "SELECT d.subscriber, d.digest_date, d.seq FROM deliveries x"
                " JOIN digests d ON d.id = x.digest_id"
                " WHERE x.channel = 'email' AND x.status = 'done' AND d.digest_date = ?",
                (day.isoformat(),),
            ).fetchall()
        recorded = {
            (reader, digest_slug(date.fromisoformat(str(on)[:10]), seq)) for reader, on, seq in rows
        }
        return {(reader, mid) for reader, mid in got if (reader, slug_of(mid)) not in recorded}

    def store(self) -> sqlite3.Connection:
        path = self.folder / "digest.db"
        return sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)

    def judge(self) -> None:
        """Compare what each reader received with what the store says it was chosen."""
        with self.store() as db:
            chosen = db.execute(
                "SELECT d.subscriber, p.arxiv_id FROM ledger l"
                " JOIN digests d ON d.id = l.digest_id JOIN papers p ON p.id = l.paper_id"
                " WHERE l.status = 'selected'"
            ).fetchall()
            pending = db.execute("SELECT count(*) FROM deliveries WHERE status != 'done'")
            self.tally.pending_at_end = int(pending.fetchone()[0])
        messages = self.messages()
        got: dict[str, set[str]] = {}
        digests_of: dict[tuple[str, str], set[str]] = {}
        for message in messages:
            got.setdefault(message.reader, set()).update(message.papers)
            for paper in message.papers:
                digests_of.setdefault((message.reader, paper), set()).add(message.message_id)
        self.tally.papers_chosen = len(chosen)
        self.tally.papers_lost = sum(
            1 for reader, paper in chosen if paper not in got.get(reader, ())
        )
        self.tally.papers_doubled = sum(1 for ids in digests_of.values() if len(ids) > 1)
        self.tally.messages = len(messages)
        copies = Counter((m.reader, m.message_id) for m in messages)
        self.tally.messages_doubled = sum(n - 1 for n in copies.values())


def _zombie(process: Path) -> bool:
    return (process / "stat").read_text().rsplit(")", 1)[-1].split()[0] == "Z"


def kill_quietly(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


_print_lock = threading.Lock()


def say(line: str) -> None:
    with _print_lock:
        print(line, file=sys.stderr, flush=True)


COLUMNS = [
    ("kills", "kills"),
    ("locked_out", "locked out"),
    ("left_behind", "left behind"),
    ("papers_chosen", "papers chosen"),
    ("papers_lost", "lost"),
    ("papers_doubled", "papers doubled"),
    ("messages", "messages"),
    ("messages_doubled", "messages doubled"),
    ("kills_in_window", "kills in window"),
    ("messages_in_window", "msgs in window"),
    ("pending_at_end", "pending"),
    ("runs_failed", "runs failed"),
    ("seconds", "seconds"),
]


def table(tallies: list[Tally]) -> str:
    rows = [[t.scenario] + [str(getattr(t, key)) for key, _ in COLUMNS] for t in tallies]
    total = ["total"] + [str(round(sum(getattr(t, key) for t in tallies), 1)) for key, _ in COLUMNS]
    header = ["scenario"] + [title for _, title in COLUMNS]
    widths = [max(len(row[k]) for row in [header, *rows, total]) for k in range(len(header))]

    def line(cells: list[str]) -> str:
        return " | ".join(
            c.ljust(w) if k == 0 else c.rjust(w)
            for k, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    rule = "-+-".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *map(line, rows), rule, line(total)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100, help="kills in all (default 100)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--subscribers", type=int, default=12)
    parser.add_argument("--papers", type=int, default=30, help="new papers a day")
    parser.add_argument("--parallel", type=int, default=2, help="scenarios at a time")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--keep", type=Path, help="keep the scenarios' folders here")
    parser.add_argument("--fresh", action="store_true", help="start each run as a new Python")
    parser.add_argument("--loader", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.loader:
        return loader_main()
    if args.kills < len(SCENARIOS):
        parser.error(f"--kills must be at least {len(SCENARIOS)}, one per scenario")
    share = [args.kills // len(SCENARIOS) + (k < args.kills % len(SCENARIOS)) for k in range(4)]
    say(f"seed {args.seed}: {args.kills} kills over {len(SCENARIOS)} scenarios")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="digest-faults-") as scratch:
        root = args.keep or Path(scratch)
        scenarios = [Scenario(root, w, c, args) for w, c in SCENARIOS]
        with ThreadPoolExecutor(max_workers=args.parallel) as pool:
            tallies = list(pool.map(Scenario.run, scenarios, share))
    seconds = round(time.monotonic() - started, 1)
    if args.json:
        print(
            json.dumps(
                {"seed": args.seed, "seconds": seconds, "scenarios": [asdict(t) for t in tallies]},
                indent=2,
            )
        )
    else:
        print(table(tallies))
        print(f"seed {args.seed}, {seconds} s")
        for tally in tallies:
            for note in tally.notes:
                print(f"{tally.scenario}: {note}")
    bad = sum(t.locked_out + t.papers_lost + t.left_behind for t in tallies)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
