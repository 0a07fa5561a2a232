"""Serving a run's subscribers in several processes, one per CPU core.

After the run has ingested and read what everyone is owed, it forks ``count`` worker
processes. They share, copy-on-write, everything read so far (the analysed corpus, each
subscriber's candidates). Each opens its own store connection and channels (its own SMTP
connection), then asks for batches of subscribers one at a time, serves each exactly as a
single process would, and sends back each subscriber's report as soon as it is served.

Each worker talks to the run over a pipe of its own, and writes to it synchronously: a
report sent is a report received, even if the worker is killed the next instant, and a
dead worker is seen as the end of its pipe. It leaves its subscriber as a crash leaves a
run (a recorded digest is delivered by the next run, an unrecorded one stays owed); the
subscribers of its batch it had not reported are reported as failed, and the other
workers go on with the remaining batches.

A worker never outlives the run. Killed as the OOM killer does it (SIGKILL, no clean-up),
the run could otherwise leave workers behind that wait for a batch forever: a forked
child holds a copy of every descriptor the run had open, so it kept the run's ends of the
pipes open (its own, so it never saw the end of its pipe, and the other workers') and the
run lock (``digest.store.lock``). So each forked process first closes the run's pipe ends
it was given, asks Linux to kill it when the run dies (``PR_SET_PDEATHSIG``), and, where
that is not available, checks between waits that the run is still its parent.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, suppress
from multiprocessing.connection import Connection, wait
from typing import Any, Literal, TypeVar

from digest.config import SubscriberSettings
from digest.report import SubscriberReport, Timings

log = logging.getLogger("digest")

SUBSCRIBERS_PER_WORKER = 500  # below this, a second process costs more than it saves
PARENT_CHECK_SECONDS = 1.0  # how often a waiting worker checks that the run is alive
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

Reports = dict[str, SubscriberReport]
Report = Callable[[str, SubscriberReport], None]
ServeBatch = Callable[[Sequence[SubscriberSettings], Report], Timings]
Session = Callable[[], AbstractContextManager[ServeBatch]]
Batches = Sequence[Sequence[SubscriberSettings]]
Item = TypeVar("Item")
Result = TypeVar("Result")


def worker_count(setting: int | Literal["auto"], subscribers: int) -> int:
    """How many processes serve ``subscribers``: the setting, or one per core for "auto"
    (at most one per SUBSCRIBERS_PER_WORKER subscribers). One where fork is unavailable."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    if setting != "auto":
        return setting
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, subscribers // SUBSCRIBERS_PER_WORKER))


def serve_in_workers(
    count: int, batches: Batches, session: Session, progress: Callable[[str], None]
) -> Iterator[tuple[Reports, Timings, int]]:
    """Serve ``batches`` in ``count`` forked processes; yield reports and stage timings
    as they come, with the number of the worker they come from (-1: none). ``session``
    runs in each worker: it opens what the worker needs (store, channels) and gives the
    function that serves one batch."""
    context = multiprocessing.get_context("fork")
    workers: dict[Connection, tuple[multiprocessing.process.BaseProcess, list[int]]] = {}
    number_of: dict[Connection, int] = {}
    run = os.getpid()
    for k in range(count):
        ours, theirs = context.Pipe()
        process = context.Process(
            target=_work,
            args=(theirs, batches, session, run, [*workers, ours]),
            name=f"digest-worker-{k + 1}",
        )
        process.start()
        theirs.close()  # so that the worker's death ends the pipe
        workers[ours] = (process, [])  # the batch it serves, if any
        number_of[ours] = k
    queue = list(range(len(batches)))
    queue.reverse()
    reported: set[str] = set()
    broken: list[str] = []
    try:
        while workers:
            for pipe in wait(list(workers)):
                process, serving = workers[pipe]
                worker = number_of[pipe]
                try:
                    kind, payload = pipe.recv()  # type: ignore[misc]
                except (EOFError, OSError):  # the worker is gone
                    process.join()
                    del workers[pipe]
                    if serving:
                        reason = (
                            f"the worker process serving it died (exit code {process.exitcode}); "
                            "its digest is finished on the next run"
                        )
                        yield _failed(batches[serving[0]], reported, reason), Timings(), worker
                    continue
                if kind == "report":
                    name, entry = payload
                    reported.add(name)
                    yield {name: entry}, Timings(), worker
                    progress(f"digests: {len(reported)} served, in {count} worker processes")
                elif kind == "next":  # done with its batch (its timings), ready for another
                    if serving:
                        yield {}, payload, worker
                    serving[:] = [queue.pop()] if queue else []
                    pipe.send(serving[0] if serving else None)
                elif kind == "failed":  # its batch raised (a bug): the reports say so
                    reason = f"unexpected error: {payload}"
                    yield _failed(batches[serving[0]], reported, reason), Timings(), worker
                    serving.clear()
                else:  # "broken": it could not open the store or its channels
                    broken.append(str(payload))
        if queue:  # no worker was left to serve these
            reason = "not served: " + ("; ".join(dict.fromkeys(broken)) or "no worker was left")
            for number in queue:
                yield _failed(batches[number], reported, reason), Timings(), -1
    finally:
        for process, _serving in workers.values():
            process.kill()
            process.join()


def _failed(batch: Sequence[SubscriberSettings], reported: set[str], reason: str) -> Reports:
    missing = {s.name: SubscriberReport(error=reason) for s in batch if s.name not in reported}
    if missing:
        log.error("%d subscribers: %s", len(missing), reason)
    return missing


class RunGone(BaseException):
    """The run that forked this process has died: stop serving, there is no one to report
    to. A BaseException, so that no handler of a subscriber's or a batch's errors keeps
    the worker going."""


def _work(
    pipe: Connection, batches: Batches, session: Session, run: int, inherited: list[Connection]
) -> None:
    """A worker process: ask for a batch, serve it, until there is none left, or until
    the run that forked it is gone."""

    def report(name: str, entry: SubscriberReport) -> None:
        _send(pipe, ("report", (name, entry)))

    try:
        follow_parent(run, inherited)
        with session() as serve:
            timings: Timings | None = None
            while True:
                _send(pipe, ("next", timings))
                number = _receive(pipe, run)
                if number is None:
                    return
                try:
                    timings = serve(batches[number], report)
                except Exception as exc:  # the reports of a batch that raised say why
                    log.exception("a batch of %d subscribers failed", len(batches[number]))
                    _send(pipe, ("failed", repr(exc)))
                    timings = None
    except RunGone:
        log.warning("worker process %d: the run is gone; stopping", os.getpid())
    except Exception as exc:  # could not open the store or channels: others may still
        log.exception("a worker process could not start")
        with suppress(RunGone):
            _send(pipe, ("broken", f"a worker could not start: {exc}"))
    finally:
        pipe.close()


def follow_parent(parent: int, inherited: Sequence[Connection]) -> None:
    """In a process just forked from ``parent``: close the parent's pipe ends it was
    given (held here, they would keep its own pipe from ever ending), have the kernel
    kill it when the parent dies, and stop at once if the parent is already gone."""
    for end in inherited:
        end.close()
    _die_with_parent()
    if os.getppid() != parent:  # died before the request above took effect
        raise RunGone


def _die_with_parent() -> bool:
    """Ask Linux to SIGKILL this process when the thread that forked it exits (the run's
    thread, which waits for its workers, so: when the run dies). False where there is no
    such request; the waits then check the parent themselves (``_receive``)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _receive(pipe: Connection, parent: int) -> Any:
    """The next message from the run; RunGone if the pipe ended or the run died (its
    pid is no longer this process's parent) while waiting."""
    try:
        while not pipe.poll(PARENT_CHECK_SECONDS):
            if os.getppid() != parent:
                raise RunGone
        return pipe.recv()
    except (EOFError, OSError):
        raise RunGone from None


def _send(pipe: Connection, message: object) -> None:
    """Send to the run; RunGone if nobody reads the pipe any more."""
    try:
        pipe.send(message)
    except OSError:  # BrokenPipeError: the run's end is closed, so the run is dead
        raise RunGone from None


def map_in_processes(
    count: int, function: Callable[[Sequence[Item]], list[Result]], items: Sequence[Item]
) -> list[Result]:
    """``function`` over ``items``, split in ``count`` shares: one computed here, the
    others by forked processes that see everything this process has; the results in the
    order of ``items``. For pure, heavy work (analysing terms): a share whose process
    fails is computed here too."""
    if (
        count <= 1
        or len(items) < 2 * count
        or "fork" not in multiprocessing.get_all_start_methods()
    ):
        return function(items)
    context = multiprocessing.get_context("fork")
    shares = [items[k::count] for k in range(count)]
    running: list[tuple[Connection, multiprocessing.process.BaseProcess]] = []
    parent = os.getpid()
    for share in shares[1:]:
        ours, theirs = context.Pipe(duplex=False)
        inherited = [pipe for pipe, _process in running] + [ours]
        process = context.Process(
            target=_map_share, args=(theirs, function, share, parent, inherited)
        )
        process.start()
        theirs.close()
        running.append((ours, process))
    results: list[list[Result]] = [function(shares[0])]
    for (pipe, process), share in zip(running, shares[1:], strict=True):
        try:
            results.append(pipe.recv())
        except (EOFError, OSError):
            log.warning("a helper process died; its share is computed here")
            results.append(function(share))
        process.join()
    merged: list[Result] = [None] * len(items)  # type: ignore[list-item]
    for k, found in enumerate(results):
        merged[k::count] = found
    return merged


def _map_share(
    pipe: Connection,
    function: Callable[[Sequence[Item]], list[Result]],
    share: Sequence[Item],
    parent: int,
    inherited: list[Connection],
) -> None:
    # A collection would walk (and so copy) every page of the parent's objects.
    gc.disable()
    try:
        follow_parent(parent, inherited)
        _send(pipe, function(share))
    except RunGone:
        pass
    finally:
        pipe.close()
