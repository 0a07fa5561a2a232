"""Process faults: `digest run` killed with SIGKILL (as the OOM killer does it) while its
worker processes serve, and what the next run finds: no process left behind, the store
free to run again, every reader's digest delivered once."""

from __future__ import annotations

import email
import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from digest.config import load_config
from digest.store import Store
from digest.store.schema import deliveries, digests, ledger

READERS = 24
TOPICS = [[], ["agent"], ["diffusion"], ["reasoning"], ["video"], ["language model"]]

# `digest run`, with batches of 4 readers (so that both workers have batches), each file
# delivery a little slower (so that the workers are still busy when the run is killed),
# and a marker per worker process once it delivers. Argument 3 turns PR_SET_PDEATHSIG off,
# to show that the portable check on the parent is enough on its own.
SLOW_RUN = textwrap.dedent(
    """
    import os, pathlib, sys, time
    from digest import pipeline, workers
    from digest.channels.email_files import EmlFileChannel
    pipeline.BATCH = 4
    markers, run = pathlib.Path(sys.argv[1]), os.getpid()
    if sys.argv[3] == "no-pdeathsig":
        workers._die_with_parent = lambda: False
    original = EmlFileChannel.deliver
    def deliver(self, *args, **kwargs):
        if os.getpid() != run:
            (markers / str(os.getpid())).touch()
        time.sleep(0.1)
        return original(self, *args, **kwargs)
    EmlFileChannel.deliver = deliver
    from digest.cli import main
    sys.argv = ["digest", "run", "--config", sys.argv[2]]
    main()
    """
)


def readers(count: int) -> str:
    return "".join(
        f"""
[[subscribers]]
name = "reader{i:02d}"
email = "reader{i:02d}@example.org"
keywords = {TOPICS[i % len(TOPICS)]!r}
max_papers = 10
channels = ["email", "feed"]
""".replace("'", '"')
        for i in range(count)
    )


@pytest.fixture
def two_workers(make_config, seeds, tmp_path) -> Path:
    config = make_config(subscribers=readers(READERS), extra="[run]\nworkers = 2\n")
    shutil.copy(seeds[0], tmp_path / "inbox" / seeds[0].name)
    return config


def _alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _wait_for(predicate, what: str, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _digest(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "digest", "run", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _lock_is_free(config: Path) -> bool:
    """Whether nobody holds the run lock's file (an flock on it is granted)."""
    fd = os.open(config.parent / "state" / "digest.db.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def _ledger(config: Path) -> dict[str, tuple[int, int, int]]:
    """reader -> (digests, papers chosen, deliveries not done)."""
    loaded = load_config(config)
    with Store.open(loaded.resolve(loaded.store.path)) as store:
        conn = store.conn
        made = dict(
            conn.execute(
                select(digests.c.subscriber, func.count()).group_by(digests.c.subscriber)
            ).all()
        )
        chosen = dict(
            conn.execute(
                select(ledger.c.subscriber, func.count())
                .where(ledger.c.status == "selected")
                .group_by(ledger.c.subscriber)
            ).all()
        )
        owed = dict(
            conn.execute(
                select(digests.c.subscriber, func.count())
                .join(deliveries, deliveries.c.digest_id == digests.c.id)
                .where(deliveries.c.status != "done")
                .group_by(digests.c.subscriber)
            ).all()
        )
    return {name: (made[name], chosen.get(name, 0), owed.get(name, 0)) for name in made}


def _papers_emailed(config: Path) -> dict[str, list[int]]:
    """reader -> the paper count of each email written for it (from its Subject)."""
    found: dict[str, list[int]] = {}
    for path in sorted((config.parent / "out" / "email").rglob("*.eml")):
        subject = email.message_from_bytes(path.read_bytes())["Subject"]
        count = re.search(r": (\d+) new", subject)
        assert count, subject
        found.setdefault(path.parent.name, []).append(int(count.group(1)))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("death_signal", ["pdeathsig", "no-pdeathsig"])
def test_a_run_killed_while_its_workers_serve_leaves_no_process_and_no_lock(
    two_workers, tmp_path, death_signal
):
    markers = tmp_path / "markers"
    markers.mkdir()
    run = subprocess.Popen(
        [sys.executable, "-c", SLOW_RUN, str(markers), str(two_workers), death_signal],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    workers: list[int] = []
    try:
        _wait_for(lambda: len(list(markers.iterdir())) >= 2 or run.poll() is not None, "workers")
        assert run.poll() is None, run.communicate()[1]
        workers = [int(p.name) for p in markers.iterdir()]
        assert all(_alive(pid) for pid in workers)  # both are serving
        run.kill()  # SIGKILL, as the OOM killer does: nothing is cleaned up
        run.wait(timeout=30)

        _wait_for(lambda: not any(_alive(pid) for pid in workers), "the workers to end", 10)
        assert _lock_is_free(two_workers)  # no process kept the lock alive
    finally:
        run.kill()
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        run.communicate()

    after = _digest(two_workers)
    assert after.returncode == 0, after.stderr
    assert "took over" not in after.stderr  # the lock was free, not taken from anyone
    stored = _ledger(two_workers)
    assert len(stored) == READERS
    assert {made for made, _chosen, _owed in stored.values()} == {1}  # one digest each
    assert {owed for _made, _chosen, owed in stored.values()} == {0}  # all delivered
    emailed = _papers_emailed(two_workers)
    for name, (_made, chosen, _owed) in stored.items():
        assert emailed.get(name, []) == ([chosen] if chosen else []), name  # once, all of them
    assert sum(chosen for _made, chosen, _owed in stored.values()) > 100


@pytest.mark.slow
def test_a_lock_kept_by_an_orphan_of_a_dead_run_is_taken_over_and_named(two_workers, tmp_path):
    """An older version's worker (or anything that inherited the lock's open file) keeps the
    flock after its run died: the next run takes the lock over and says so."""
    lock_path = two_workers.parent / "state" / "digest.db.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import datetime, pathlib, subprocess, sys
                from digest.store.lock import RunLock
                lock = RunLock(pathlib.Path(sys.argv[1]))
                lock.acquire(datetime.datetime.now(datetime.UTC))
                orphan = subprocess.Popen(["sleep", "120"], pass_fds=[lock._fd])
                print(orphan.pid, flush=True)
                sys.stdin.read()
                """
            ),
            str(lock_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    orphan = 0
    try:
        assert holder.stdout is not None
        orphan = int(holder.stdout.readline())
        holder.kill()
        holder.wait(timeout=30)
        assert _alive(orphan) and not _lock_is_free(two_workers)

        locked = _digest(two_workers)
        assert locked.returncode == 0, locked.stderr
        assert (
            f"took over the run lock {lock_path} from a dead run (pid {holder.pid} on "
            in locked.stderr
        )
        assert f"processes {orphan} left from it still held it" in locked.stderr
        assert {made for made, _chosen, _owed in _ledger(two_workers).values()} == {1}
        assert "took over" not in _digest(two_workers).stderr  # the new lock file is clean
    finally:
        if orphan and _alive(orphan):
            os.kill(orphan, signal.SIGKILL)
        holder.kill()
        holder.communicate()
