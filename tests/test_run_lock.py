"""Acceptance: two overlapping runs; the second exits non-zero naming the lock. Processes
starting together on a new store all open it."""

from __future__ import annotations

import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.config import load_config
from digest.errors import LockedError
from digest.pipeline import run_once
from digest.store import Store
from digest.store.lock import RunLock
from digest.store.migrations import SCHEMA_VERSION

# The first run stops inside its delivery loop until the test lets it go on.
PAUSING_RUN = textwrap.dedent(
    """
    import pathlib, sys, time
    from digest.channels.email_files import EmlFileChannel
    paused, go_on = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    original = EmlFileChannel.deliver
    def deliver(self, *args, **kwargs):
        paused.touch()
        while not go_on.exists():
            time.sleep(0.05)
        return original(self, *args, **kwargs)
    EmlFileChannel.deliver = deliver
    from digest.cli import main
    sys.argv = ["digest", "run", "--config", sys.argv[3]]
    main()
    """
)


def _wait_for(path: Path, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"first run ended early: {process.communicate()}")
        assert time.monotonic() < deadline, "first run never reached delivery"
        time.sleep(0.05)


def test_second_overlapping_run_exits_nonzero_naming_the_lock(make_config, seeds, tmp_path):
    config = make_config()
    shutil.copy(seeds[2], config.parent / "inbox" / seeds[2].name)
    paused, go_on = tmp_path / "paused", tmp_path / "go-on"
    first = subprocess.Popen(
        [sys.executable, "-c", PAUSING_RUN, str(paused), str(go_on), str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(paused, first)
        second = subprocess.run(
            [sys.executable, "-m", "digest", "run", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 3
        lock_file = config.parent / "state" / "digest.db.lock"
        assert f"another run holds the lock {lock_file}" in second.stderr
        assert f"pid {first.pid}" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        go_on.touch()
        try:
            _out, err = first.communicate(timeout=60)
        finally:
            first.kill()  # never outlives the test, whatever failed
    assert first.returncode == 0, err

    # Once the first run is over, the lock is free again and a run goes through.
    again = subprocess.run(
        [sys.executable, "-m", "digest", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert again.returncode == 0, again.stderr


def test_lock_is_released_when_its_holder_dies(tmp_path):
    lock_path = tmp_path / "store.db.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, datetime\n"
            "from digest.store.lock import RunLock\n"
            "RunLock(__import__('pathlib').Path(sys.argv[1])).acquire(datetime.datetime.now(datetime.UTC))\n"
            "print('held', flush=True)\n"
            "time.sleep(60)\n",
            str(lock_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(LockedError):
            RunLock(lock_path).acquire(datetime.now(UTC))
    finally:
        holder.kill()
        holder.wait()
    lock = RunLock(lock_path)
    lock.acquire(datetime.now(UTC))  # the kernel released the dead holder's lock
    assert lock.held
    lock.release()


def test_run_once_refuses_while_locked_and_records_nothing(make_config, seeds, clock):
    config_path = make_config()
    shutil.copy(seeds[2], config_path.parent / "inbox" / seeds[2].name)
    config = load_config(config_path)
    holder = RunLock(config_path.parent / "state" / "digest.db.lock")
    holder.acquire(clock())
    try:
        with pytest.raises(LockedError, match="another run holds the lock"):
            run_once(config, clock=clock)
    finally:
        holder.release()
    report = run_once(config, clock=clock)
    assert report.subscribers["all"].delivered == 38  # nothing was taken by the refused run


def _open_at_once(barrier, path: str, results) -> None:
    barrier.wait()
    try:
        with Store.open(path) as store:
            results.put(("ok", store.schema_version))
    except Exception as exc:  # reported to the test, which names it
        results.put(("failed", str(exc)))


def test_processes_opening_a_new_store_at_the_same_moment_all_get_it(tmp_path):
    """Two schedulers started together both create the store: neither may fail on it."""
    context = multiprocessing.get_context("fork")
    for attempt in range(12):  # the race is narrow: try it often
        path = tmp_path / f"new{attempt}" / "digest.db"
        barrier, results = context.Barrier(2), context.Queue()
        processes = [
            context.Process(target=_open_at_once, args=(barrier, str(path), results))
            for _ in range(2)
        ]
        for process in processes:
            process.start()
        outcomes = [results.get(timeout=60) for _ in processes]
        for process in processes:
            process.join()
        assert outcomes == [("ok", SCHEMA_VERSION)] * 2, (attempt, outcomes)


def test_a_forked_child_does_not_keep_its_parents_lock(tmp_path):
    """A child shares its parent's open files, and so an flock: if it kept its copy, a
    child outliving a killed run would lock every later run out."""
    lock_path = tmp_path / "store.db.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import datetime, os, pathlib, sys, time\n"
            "from digest.store.lock import RunLock\n"
            "RunLock(pathlib.Path(sys.argv[1])).acquire(datetime.datetime.now(datetime.UTC))\n"
            "child = os.fork()\n"
            "if child == 0:\n"
            "    time.sleep(120)\n"
            "    os._exit(0)\n"
            "print(child, flush=True)\n"
            "time.sleep(120)\n",
            str(lock_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    child = 0
    try:
        assert holder.stdout is not None
        child = int(holder.stdout.readline())
        with pytest.raises(LockedError):  # the parent holds it
            RunLock(lock_path).acquire(datetime.now(UTC))
        holder.kill()
        holder.wait(timeout=30)
        os.kill(child, 0)  # the child lives on
        lock = RunLock(lock_path)
        lock.acquire(datetime.now(UTC))
        assert lock.held and lock.took_over is None  # free: nothing had to be taken over
        lock.release()
    finally:
        if child:
            os.kill(child, signal.SIGKILL)
        holder.kill()
        holder.communicate()


def test_a_lock_whose_holder_lives_is_never_taken_over(tmp_path):
    lock = RunLock(tmp_path / "store.db.lock")
    lock.acquire(datetime.now(UTC))
    try:
        with pytest.raises(LockedError, match=f"pid {os.getpid()} on "):
            RunLock(tmp_path / "store.db.lock").acquire(datetime.now(UTC))
    finally:
        lock.release()


def _stale_lock_kept_by_an_orphan(lock_path: Path) -> tuple[int, int]:
    """A lock whose run was SIGKILLed while a process it started kept the lock's open
    file: (the dead run's pid, the orphan's pid)."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import datetime, pathlib, subprocess, sys\n"
            "from digest.store.lock import RunLock\n"
            "lock = RunLock(pathlib.Path(sys.argv[1]))\n"
            "lock.acquire(datetime.datetime.now(datetime.UTC))\n"
            "orphan = subprocess.Popen(['sleep', '120'], pass_fds=[lock._fd],\n"
            "    stdout=subprocess.DEVNULL)\n"
            "print(orphan.pid, flush=True)\n"
            "time = __import__('time'); time.sleep(120)\n",
            str(lock_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    orphan = int(holder.stdout.readline())
    holder.kill()
    holder.communicate()
    return holder.pid, orphan


def _take(barrier, path: str, results) -> None:  # type: ignore[no-untyped-def]
    lock = RunLock(Path(path))
    barrier.wait()
    try:
        lock.acquire(datetime.now(UTC))
    except LockedError as exc:
        results.put(("locked", exc.message))
        return
    results.put(("took", lock.took_over or ""))
    time.sleep(2)  # held while the others try


def test_runs_meeting_a_stale_lock_at_once_take_it_over_once(tmp_path):
    lock_path = tmp_path / "store.db.lock"
    dead, orphan = _stale_lock_kept_by_an_orphan(lock_path)
    try:
        context = multiprocessing.get_context("fork")
        barrier, results = context.Barrier(4), context.Queue()
        takers = [
            context.Process(target=_take, args=(barrier, str(lock_path), results)) for _ in range(4)
        ]
        for taker in takers:
            taker.start()
        outcomes = sorted(results.get(timeout=60) for _ in takers)
        for taker in takers:
            taker.join(timeout=30)
    finally:
        os.kill(orphan, signal.SIGKILL)
    assert [kind for kind, _ in outcomes] == ["locked", "locked", "locked", "took"]
    took = outcomes[-1][1]
    assert f"from a dead run (pid {dead} on " in took and f"processes {orphan} left" in took
    named = {re.search(r"\(pid (\d+) on ", message).group(1) for _, message in outcomes[:3]}
    assert len(named) == 1 and int(named.pop()) in {t.pid for t in takers}  # the one taker
