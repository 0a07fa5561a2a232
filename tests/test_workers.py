"""Several processes serving one store: forked workers of one run, and runs side by side.

Worker processes are forked from the test process, so a method wrapped here (to kill a
worker at a precise point) is wrapped in them too. On PostgreSQL, two real runs in two
processes share the subscribers; each subscriber must get its digest exactly once.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import time
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import pytest
from sqlalchemy import func, select

from conftest import day, postgres_url_for_test
from digest import pipeline
from digest.channels.email_files import EmlFileChannel
from digest.config import load_config
from digest.pipeline import run_once
from digest.store import Store
from digest.store.schema import deliveries, digests
from digest.workers import map_in_processes

TOPICS = [
    [], ["agent"], ["diffusion"], ["reasoning"], ["video"], ["language model"], ["benchmark"],
    ["attention"], ["reinforcement learning"], ["3d"], ["multimodal"], ["robot"], ["image"],
    ["speech"], ["code"], ["vision language"],
]  # fmt: skip
NOW = datetime(2026, 3, 13, 6, 30, tzinfo=UTC)


def subscribers(count: int) -> str:
    return "".join(
        f"""
[[subscribers]]
name = "reader{i:03d}"
email = "reader{i:03d}@example.org"
keywords = {TOPICS[i % len(TOPICS)]!r}
max_papers = 15
channels = ["email", "feed"]
""".replace("'", '"')
        for i in range(count)
    )


def configure(make_config, seeds, folder: Path, *, workers: int, store_url: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = make_config(
        subscribers=subscribers(40), extra=f"[run]\nworkers = {workers}\n", folder=folder
    )
    if store_url:
        text = config.read_text()
        config.write_text(text.replace("[store]\n", f'[store]\nurl = "{store_url}"\n', 1))
    shutil.copy(seeds[0], folder / "inbox" / seeds[0].name)
    return config


def outputs(config: Path) -> dict[str, bytes]:
    out = config.parent / "out"
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def digests_per_subscriber(config: Path) -> dict[str, tuple[int, int]]:
    """subscriber -> (digests recorded, deliveries done)."""
    loaded = load_config(config)
    target = loaded.store.database_url or loaded.resolve(loaded.store.path)
    with Store.open(target) as store:
        made = dict(
            store.conn.execute(
                select(digests.c.subscriber, func.count()).group_by(digests.c.subscriber)
            ).all()
        )
        done = dict(
            store.conn.execute(
                select(digests.c.subscriber, func.count())
                .join(deliveries, deliveries.c.digest_id == digests.c.id)
                .where(deliveries.c.status == "done")
                .group_by(digests.c.subscriber)
            ).all()
        )
    return {name: (made[name], done.get(name, 0)) for name in made}


# --- worker processes of one run (SQLite) -----------------------------------------------------


def test_worker_processes_make_exactly_what_one_process_makes(
    make_config, seeds, tmp_path, monkeypatch
):
    monkeypatch.setattr(pipeline, "BATCH", 3)  # many small batches over the workers
    alone = configure(make_config, seeds, tmp_path / "one", workers=1)
    shared = configure(make_config, seeds, tmp_path / "three", workers=3)
    one = run_once(load_config(alone), today=day(0), clock=lambda: NOW)
    three = run_once(load_config(shared), today=day(0), clock=lambda: NOW)

    assert one.ok and three.ok
    assert list(three.subscribers) == list(one.subscribers)  # the config's order
    for name, entry in one.subscribers.items():
        other = three.subscribers[name]
        assert (other.candidates, other.selected, other.delivered) == (
            entry.candidates,
            entry.selected,
            entry.delivered,
        )
        assert [p["id"] for p in other.papers] == [p["id"] for p in entry.papers]
    assert sum(e.selected for e in one.subscribers.values()) > 200
    assert outputs(shared) == outputs(alone)  # byte for byte: every email and feed
    # One digest each (with nothing chosen, it only records what was considered), and
    # both channels delivered where there was something to deliver.
    expected = {name: (1, 2 if e.selected else 0) for name, e in one.subscribers.items()}
    assert digests_per_subscriber(shared) == digests_per_subscriber(alone) == expected


def test_a_killed_worker_loses_nothing_and_the_next_run_sends_nothing_twice(
    make_config, seeds, tmp_path, monkeypatch
):
    monkeypatch.setattr(pipeline, "BATCH", 4)
    config = configure(make_config, seeds, tmp_path, workers=2)
    test_process = os.getpid()
    original = EmlFileChannel.deliver

    def deliver(self, digest, subscriber, context):  # type: ignore[no-untyped-def]
        if subscriber.name == "reader010" and os.getpid() != test_process:
            os.kill(os.getpid(), signal.SIGKILL)  # a worker, after recording the digest
        return original(self, digest, subscriber, context)

    monkeypatch.setattr(EmlFileChannel, "deliver", deliver)
    first = run_once(load_config(config), today=day(0), clock=lambda: NOW)

    # reader010 is the 3rd of its batch (8-11): 8 and 9 were served and reported, 10 and 11
    # are reported as lost with the worker; every other batch went to the other worker.
    failed = {name for name, entry in first.subscribers.items() if entry.error}
    assert failed == {"reader010", "reader011"}
    assert "died" in first.subscribers["reader010"].error
    assert not first.ok
    emails = sorted(p.parent.name for p in (config.parent / "out" / "email").rglob("*.eml"))
    chose = {name for name, e in first.subscribers.items() if e.selected}
    assert "reader010" not in emails and "reader011" not in emails
    assert len(emails) == len(chose) > 30
    made = digests_per_subscriber(config)
    assert made["reader010"] == (1, 0)  # recorded, not delivered: it is owed
    assert "reader011" not in made

    monkeypatch.setattr(EmlFileChannel, "deliver", original)
    before = outputs(config)
    second = run_once(load_config(config), today=day(0), clock=lambda: NOW)
    assert second.ok
    delivered = {name for name, entry in second.subscribers.items() if entry.deliveries}
    assert "reader010" in delivered and delivered <= {"reader010", "reader011"}
    assert second.subscribers["reader010"].candidates == 0  # only its pending deliveries
    assert second.subscribers["reader011"].candidates == 119  # never served: owed everything
    after = outputs(config)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing rewritten
    assert {made for name, made in digests_per_subscriber(config).items()} <= {(1, 2), (1, 0)}
    assert digests_per_subscriber(config)["reader010"] == (1, 2)


# --- runs side by side on PostgreSQL ----------------------------------------------------------


class SlowFiles(EmlFileChannel):
    """Writes .eml files, a little slowly, so that two runs overlap for a while."""

    def deliver(self, digest, subscriber, context):  # type: ignore[no-untyped-def]
        time.sleep(0.02)
        return super().deliver(digest, subscriber, context)


def _run_in_child(config: Path, kill_at: str | None, results) -> None:  # type: ignore[no-untyped-def]
    class Dying(SlowFiles):
        def deliver(self, digest, subscriber, context):  # type: ignore[no-untyped-def]
            if subscriber.name == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return super().deliver(digest, subscriber, context)

    report = run_once(
        load_config(config), today=day(0), clock=lambda: NOW, channels={"email": Dying()}
    )
    # Whom this run served: it made their digest (their papers were new to it), or it
    # delivered one an earlier run had made.
    served = {n for n, entry in report.subscribers.items() if entry.candidates or entry.deliveries}
    results.put((report.ok, sorted(served)))


def _start(config: Path, kill_at: str | None = None):  # type: ignore[no-untyped-def]
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    process = context.Process(target=_run_in_child, args=(config, kill_at, results))
    process.start()
    return process, results


@pytest.fixture
def postgres_config(make_config, seeds, tmp_path, request) -> Path:
    url = postgres_url_for_test(request.node.name)
    config = configure(make_config, seeds, tmp_path, workers=1, store_url=url)
    text = config.read_text().replace('channels = ["email", "feed"]', 'channels = ["email"]')
    config.write_text(text)
    return config


def test_two_runs_on_postgresql_share_the_subscribers_each_served_once(postgres_config):
    runs = [_start(postgres_config), _start(postgres_config)]
    finished = [results.get(timeout=120) for _process, results in runs]
    for process, _results in runs:
        process.join(timeout=30)
        assert process.exitcode == 0

    (ok_a, served_a), (ok_b, served_b) = finished
    assert ok_a and ok_b
    assert not set(served_a) & set(served_b)  # no subscriber served by both
    assert len(served_a) + len(served_b) == 40
    assert served_a and served_b  # and both did a share of the work
    made = digests_per_subscriber(postgres_config)
    assert len(made) == 40 and {count for count, _done in made.values()} == {1}
    files = list((postgres_config.parent / "out" / "email").rglob("*.eml"))
    assert len(files) == sum(done for _count, done in made.values()) > 30


def test_a_crashed_run_on_postgresql_is_taken_over(postgres_config):
    crashed, _ = _start(postgres_config, kill_at="reader005")
    crashed.join(timeout=120)
    assert crashed.exitcode == -signal.SIGKILL
    made = digests_per_subscriber(postgres_config)
    assert made["reader005"] == (1, 0)  # recorded by the dead run, not delivered

    survivor, results = _start(postgres_config)
    ok, served = results.get(timeout=120)
    survivor.join(timeout=30)
    assert ok
    assert "reader005" in served  # its pending email, sent once by the next run
    made = digests_per_subscriber(postgres_config)
    assert len(made) == 40 and {count for count, _done in made.values()} == {1}
    files = list((postgres_config.parent / "out" / "email").rglob("*.eml"))
    assert len(files) == sum(done for _count, done in made.values()) > 30
    with Store.open(load_config(postgres_config).store.database_url) as store:
        statuses = [run["status"] for run in store.last_runs()]
    assert "interrupted" in statuses  # the dead run is seen as such


def test_work_spread_over_processes_comes_back_in_order_even_if_a_helper_dies():
    parent = os.getpid()

    def square(share: list[int]) -> list[tuple[int, int]]:
        if os.getpid() != parent and 5 in share:
            os._exit(1)  # this helper dies before answering
        return [(x * x, os.getpid()) for x in share]

    found = map_in_processes(3, square, list(range(12)))
    assert [value for value, _pid in found] == [x * x for x in range(12)]
    by = {x: pid for x, (_value, pid) in enumerate(found)}
    assert by[0] == by[3] == parent  # one share is computed here
    assert by[1] == by[4] != parent  # one by a helper
    assert by[2] == by[5] == parent  # and the dead helper's share here again


def test_runs_sharing_a_store_start_at_different_places():
    readers = [f"reader{i:03d}" for i in range(100)]
    starts = [pipeline.starting_place(readers, run_id)[0] for run_id in range(1, 6)]
    assert len(set(starts)) == 5  # five runs side by side begin with five different readers
    gaps = sorted(readers.index(s) for s in starts)
    assert min(b - a for a, b in pairwise(gaps)) >= 10  # spread out, not neighbours
    for run_id in range(1, 6):  # each still serves every reader, once
        assert sorted(pipeline.starting_place(readers, run_id)) == readers
