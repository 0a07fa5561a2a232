"""Readers kept in the store: the store API on SQLite and PostgreSQL, who a run serves (the
config's readers and the store's active ones), the `digest subscribers` commands, and
imports: every bad row reported by file and line, round trips, ten thousand rows."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import day
from digest.cli import main
from digest.config import load_config
from digest.errors import SubscriberError
from digest.pipeline import open_store, run_once
from digest.store import Store

NOW = datetime(2026, 3, 13, 7, 0, tzinfo=UTC)
LATER = datetime(2026, 3, 14, 7, 0, tzinfo=UTC)
ONE_READER = """
[[subscribers]]
name = "all"
email = "all@example.org"
keywords = []
channels = ["email"]
"""


@pytest.fixture
def store(store_target):
    with Store.open(store_target) as opened:
        yield opened


def daily_papers(folder: Path, day_: date, count: int, first: int) -> None:
    """A Hugging Face daily_papers file of ``count`` made-up papers, numbered from ``first``."""
    papers = [
        {
            "paper": {
                "id": f"2603.{first + k:05d}",
                "title": f"Selective State Spaces, Study {first + k}",
                "summary": f"Study number {first + k} of selective state space models.",
                "authors": [{"name": "Ada Example"}],
                "publishedAt": f"{day_.isoformat()}T00:00:00.000Z",
                "submittedOnDailyAt": f"{day_.isoformat()}T00:00:00.000Z",
                "upvotes": 1,
            },
            "numComments": 0,
        }
        for k in range(count)
    ]
    (folder / f"daily-{day_.isoformat()}.json").write_text(json.dumps(papers), encoding="utf-8")


def emails_of(out: Path) -> dict[str, int]:
    """How many .eml files each reader has in the output folder."""
    folder = out / "email"
    if not folder.exists():
        return {}
    return {d.name: len(list(d.glob("*.eml"))) for d in sorted(folder.iterdir())}


def cli(*args: str) -> object:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


# --- the store API ---------------------------------------------------------------------------


def test_a_reader_without_a_name_gets_an_opaque_one_and_is_found_by_name_or_address(store):
    reader = store.add_subscriber({"email": "Jane.Doe@Example.org", "keywords": ["mamba"]}, NOW)
    assert re.fullmatch(r"r-[0-9a-f]{12}", reader.name)
    assert "jane" not in reader.name.lower() and "example" not in reader.name
    assert store.get_subscriber(reader.name) == reader
    assert store.get_subscriber("jane.doe@EXAMPLE.ORG") == reader
    other = store.add_subscriber({"email": "x@example.org"}, NOW)
    assert other.name != reader.name
    with pytest.raises(SubscriberError, match="is a reader already"):
        store.add_subscriber({"email": "JANE.DOE@example.org"}, NOW)
    with pytest.raises(SubscriberError, match="taken"):
        store.add_subscriber({"email": "y@example.org", "name": reader.name}, NOW)
    assert len(store.list_subscribers()) == 2
    stored = store.get_subscriber(reader.name)
    assert stored.settings.keywords == ("mamba",) and stored.settings.max_papers == 20
    assert (stored.state.cadence, stored.state.timezone, stored.state.send_hour) == (
        "daily",
        "UTC",
        7,
    )


def test_a_store_reader_obeys_every_rule_of_a_config_subscriber_and_its_schedule(store):
    bad = {
        "email": "not-an-address",
        "keywords": ["ab*"],
        "categories": ["Computer Science"],
        "max_papers": 0,
        "channels": ["pigeon"],
        "timezone": "Mars/Olympus",
        "send_hour": 24,
        "status": "asleep",
        "colour": "blue",
    }
    with pytest.raises(SubscriberError) as caught:
        store.add_subscriber(bad, NOW)
    keys = sorted(problem.split(":", 1)[0] for problem in caught.value.problems)
    assert keys == [
        "categories.0",
        "channels.0",
        "colour",
        "email",
        "keywords.0",
        "max_papers",
        "send_hour",
        "status",
        "timezone",
    ]
    assert any("IANA time zone" in p for p in caught.value.problems)
    with pytest.raises(SubscriberError, match="cadence weekly needs weekday"):
        store.add_subscriber({"email": "w@example.org", "cadence": "weekly"}, NOW)
    weekly = store.add_subscriber(
        {"email": "w@example.org", "cadence": "weekly", "weekday": "FRI", "timezone": "Asia/Tokyo"},
        NOW,
    )
    assert (weekly.state.weekday, weekly.state.timezone) == ("fri", "Asia/Tokyo")
    assert [r.name for r in store.list_subscribers()] == [weekly.name]


def test_status_changes_stamp_when_a_reader_confirmed_and_unsubscribed(store):
    reader = store.add_subscriber({"email": "p@example.org", "status": "pending"}, NOW)
    assert reader.confirmed_at is None and reader.unsubscribed_at is None
    active = store.set_status(reader.name, "active", LATER)
    assert active.confirmed_at == LATER and active.created_at == NOW
    gone = store.set_status("p@example.org", "unsubscribed", LATER)
    assert gone.unsubscribed_at == LATER and gone.confirmed_at == LATER
    back = store.set_status(reader.name, "active", LATER)
    assert back.unsubscribed_at is None and back.confirmed_at == LATER
    assert [r.name for r in store.list_subscribers("active")] == [reader.name]
    with pytest.raises(SubscriberError, match="status: expected one of"):
        store.set_status(reader.name, "asleep", LATER)
    with pytest.raises(SubscriberError, match="no reader 'nobody'"):
        store.set_status("nobody", "active", LATER)


def test_an_update_validates_the_whole_reader_again_and_never_renames_it(store):
    reader = store.add_subscriber({"email": "u@example.org", "keywords": ["mamba"]}, NOW)
    changed = store.update_subscriber(reader.name, {"max_papers": 5, "exclude": ["survey"]}, LATER)
    assert changed.settings.keywords == ("mamba",) and changed.settings.max_papers == 5
    assert changed.updated_at == LATER
    with pytest.raises(SubscriberError, match="max_papers"):
        store.update_subscriber(reader.name, {"max_papers": "many"}, LATER)
    with pytest.raises(SubscriberError, match="does not change"):
        store.update_subscriber(reader.name, {"name": "new-name"}, LATER)
    reset = store.update_subscriber(reader.name, {"max_papers": None}, LATER)
    assert reset.settings.max_papers == 20 and store.get_subscriber(reader.name) == reset


def test_an_import_validates_every_row_first_and_upserts_by_address(store):
    old = store.add_subscriber({"email": "old@example.org", "keywords": ["mamba"]}, NOW)
    rows = [
        {"email": "OLD@example.org", "max_papers": 3},
        {"email": "new@example.org", "keywords": ["diffusion"]},
        {"email": "bad@example.org", "send_hour": 99},
        {"email": "new@example.org"},
    ]
    refused = store.import_subscribers(rows, LATER)
    assert not refused.written and [index for index, _ in refused.bad] == [2, 3]
    assert len(store.list_subscribers()) == 1
    done = store.import_subscribers(rows[:2], LATER)
    assert (done.added, done.updated, done.written) == (1, 1, True)
    updated = store.get_subscriber("old@example.org")
    assert updated.name == old.name and updated.settings.max_papers == 3
    assert updated.settings.keywords == ("mamba",)  # a field the row leaves out stays
    assert len(store.list_subscribers()) == 2


# --- who a run serves ------------------------------------------------------------------------


def test_a_run_serves_config_readers_and_active_store_readers_and_honours_unsubscribe_at_once(
    make_config, tmp_path
):
    path = make_config(subscribers=ONE_READER)
    daily_papers(tmp_path / "inbox", day(0), 4, 1)
    config = load_config(path)
    with open_store(config) as store:
        names = {
            status: store.add_subscriber(
                {"email": f"{status}@example.org", "status": status, "channels": ["email"]}, NOW
            ).name
            for status in ("active", "pending", "paused", "unsubscribed", "bouncing")
        }
    first = run_once(config, today=day(0), clock=lambda: NOW)
    assert list(first.subscribers) == ["all", names["active"]]
    assert first.subscribers[names["active"]].delivered == 4
    assert emails_of(tmp_path / "out") == {"all": 1, names["active"]: 1}

    with open_store(config) as store:
        store.set_status(names["active"], "unsubscribed", LATER)
    daily_papers(tmp_path / "inbox", day(1), 3, 101)
    second = run_once(config, today=day(1), clock=lambda: LATER)
    assert list(second.subscribers) == ["all"] and second.subscribers["all"].delivered == 3
    assert emails_of(tmp_path / "out") == {"all": 2, names["active"]: 1}


def test_the_config_wins_over_a_store_reader_with_its_name_or_address(make_config, tmp_path):
    path = make_config(subscribers=ONE_READER)
    daily_papers(tmp_path / "inbox", day(0), 2, 1)
    config = load_config(path)
    with open_store(config) as store:  # written without the command line's checks
        store.add_subscriber({"name": "all", "email": "someone@example.org"}, NOW)
        store.add_subscriber({"email": "ALL@example.org"}, NOW)
        kept = store.add_subscriber({"email": "kept@example.org", "channels": ["email"]}, NOW)
        store.add_subscriber({"email": "src@example.org", "sources": ["nowhere"]}, NOW)
    report = run_once(config, today=day(0), clock=lambda: NOW)
    assert list(report.subscribers) == ["all", kept.name]
    assert emails_of(tmp_path / "out") == {"all": 1, kept.name: 1}
    message = (tmp_path / "out" / "email" / "all").glob("*.eml").__next__().read_text()
    assert "To: all@example.org" in message


def test_a_config_without_subscribers_serves_the_store_readers(make_config, tmp_path):
    path = make_config(subscribers="")
    daily_papers(tmp_path / "inbox", day(0), 2, 1)
    config = load_config(path)
    assert config.subscribers == ()
    with open_store(config) as store:
        reader = store.add_subscriber({"email": "solo@example.org", "channels": ["email"]}, NOW)
    report = run_once(config, today=day(0), clock=lambda: NOW)
    assert list(report.subscribers) == [reader.name]
    assert emails_of(tmp_path / "out") == {reader.name: 1}
