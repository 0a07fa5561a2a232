"""Readers kept in the store: the store API on SQLite and PostgreSQL, who a run serves (the
config's readers and the store's active ones), the `digest subscribers` commands, and
imports: every bad row reported by file and line, round trips, ten thousand rows."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from conftest import day
from digest.cli import main
from digest.config import load_config
from digest.errors import SubscriberError
from digest.pipeline import open_store, run_once
from digest.store import Store
from digest.store.schema import readers as readers_table

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


def test_a_reader_stored_by_another_process_during_an_import_is_reported_and_nothing_written(
    store_target,
):
    with Store.open(store_target) as one, Store.open(store_target) as other:

        def meanwhile(reader):  # runs between the import's checks and its write
            if reader.email == "a@example.org":
                other.add_subscriber({"email": "A@example.org"}, NOW)
            return []

        rows = [{"email": "a@example.org"}, {"email": "b@example.org"}]
        with pytest.raises(SubscriberError, match="another process stored a reader"):
            one.import_subscribers(rows, NOW, check=meanwhile)
        assert [r.email for r in one.list_subscribers()] == ["A@example.org"]


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


# --- the command line ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command", ["", "add", "list", "show", "edit", "remove", "import", "export"]
)
def test_every_subscribers_command_has_help(command):
    result = cli("subscribers", *command.split(), "--help")
    assert result.exit_code == 0 and "Usage:" in result.output
    assert len(result.output.splitlines()) > 4


def test_the_subscribers_commands_add_list_show_edit_and_remove(make_config):
    path = str(make_config(subscribers=ONE_READER))
    added = cli(
        "subscribers", "add", "carol@example.org", "-c", path, "--keyword", "mamba",
        "--keyword", "linear attention", "--cadence", "weekly", "--weekday", "mon",
        "--tz", "Europe/Berlin", "--send-hour", "8", "--channel", "email", "--status", "pending",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    name = re.search(r"added (r-[0-9a-f]+) <carol@example.org> \(pending\)", added.output)[1]
    listed = json.loads(cli("subscribers", "list", "--json", "-c", path).output)
    assert [(r["name"], r["managed_by"], r["status"]) for r in listed] == [
        ("all", "config", "active"),
        (name, "store", "pending"),
    ]
    pending = json.loads(
        cli("subscribers", "list", "--json", "--status", "pending", "-c", path).output
    )
    assert [r["name"] for r in pending] == [name]
    shown = json.loads(cli("subscribers", "show", "CAROL@example.org", "--json", "-c", path).output)
    assert shown["keywords"] == ["mamba", "linear attention"] and shown["send_hour"] == 8
    assert shown["weekday"] == "mon" and shown["timezone"] == "Europe/Berlin"

    edited = cli(
        "subscribers", "edit", name, "-c", path, "--status", "active",
        "--set", "exclude=survey;benchmark", "--set", "max_papers=7",
    )  # fmt: skip
    assert edited.exit_code == 0, edited.output
    shown = json.loads(cli("subscribers", "show", name, "--json", "-c", path).output)
    assert shown["exclude"] == ["survey", "benchmark"] and shown["max_papers"] == 7
    assert shown["status"] == "active" and shown["confirmed_at"]

    bad = cli("subscribers", "edit", name, "-c", path, "--set", "send_hour=25", "--tz", "Nowhere")
    assert bad.exit_code == 2
    assert "send_hour: expected less than or equal to 23" in bad.output
    assert "timezone: expected an IANA time zone" in bad.output

    removed = cli("subscribers", "remove", "carol@example.org", "-c", path)
    assert removed.exit_code == 0 and f"unsubscribed {name}" in removed.output
    assert json.loads(cli("subscribers", "show", name, "--json", "-c", path).output)[
        "unsubscribed_at"
    ]
    purged = cli("subscribers", "remove", name, "--purge", "-c", path)
    assert purged.exit_code == 0
    assert len(json.loads(cli("subscribers", "list", "--json", "-c", path).output)) == 1
    missing = cli("subscribers", "show", name, "-c", path)
    assert missing.exit_code == 2 and f"no reader {name!r}" in missing.output


def test_the_command_line_refuses_to_change_a_reader_the_config_defines(make_config):
    path = str(make_config(subscribers=ONE_READER))
    for args in (
        ("add", "ALL@example.org"),
        ("add", "x@example.org", "--name", "all"),
        ("edit", "all", "--set", "max_papers=3"),
        ("edit", "all@example.org", "--send-hour", "3"),
        ("remove", "all"),
    ):
        result = cli("subscribers", *args, "-c", path)
        assert result.exit_code == 2, (args, result.output)
        assert "'all' is defined in" in result.output and "edit it there" in result.output
    assert json.loads(cli("subscribers", "list", "--json", "-c", path).output)[1:] == []
    unknown = cli("subscribers", "add", "s@example.org", "--set", "sources=nowhere", "-c", path)
    assert (
        unknown.exit_code == 2 and "sources: nowhere not defined in [[sources]]" in unknown.output
    )


def test_an_import_reports_every_bad_row_by_file_and_line_and_imports_nothing(
    make_config, tmp_path
):
    path = str(make_config(subscribers=ONE_READER))
    rows = tmp_path / "readers.csv"
    rows.write_text(
        "email,keywords,max_papers,timezone,interests\n"
        "a@example.org,mamba;state space model,10,Europe/Paris,\n"
        'b@example.org,"linear\nattention",ten,UTC,\n'  # a quoted cell over two lines
        "not-an-address,diffusion,5,UTC,\n"
        "c@example.org,ab*,5,Mars/Olympus,\n"
        'd@example.org,,5,UTC,"[{""name"": ""x""}]"\n'
        'e@example.org,"[""a;b""]",5,UTC,{not json\n'
        "A@example.org,again,5,UTC,\n"
        "all@example.org,mine,5,UTC,\n",
        encoding="utf-8",
    )
    result = cli("subscribers", "import", str(rows), "-c", path)
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert errors[:-1] == [
        f"error: {rows}:3: max_papers: expected a whole number, got 'ten'",
        f"error: {rows}:5: email: expected one email address such as name@example.org, got "
        "'not-an-address' (An email address must have an @-sign.)",
        f"error: {rows}:6: keywords.0: 'ab*': a wildcard needs at least 3 letters before the *",
        f"error: {rows}:6: timezone: expected an IANA time zone such as Europe/Berlin, got "
        "'Mars/Olympus'",
        f"error: {rows}:7: interests.0.keywords: required",
        f"error: {rows}:8: interests: expected a JSON array, got '{{not json' "
        "(Expecting property name enclosed in double quotes)",
        f"error: {rows}:9: email: A@example.org is also in row 1",
        f"error: {rows}:10: email: all@example.org is subscriber 'all' in {path}; edit it there",
    ]
    assert errors[-1] == f"error: {rows}: 7 of 8 rows are bad; nothing was imported"
    assert json.loads(cli("subscribers", "list", "--json", "-c", path).output)[1:] == []

    skipped = cli("subscribers", "import", str(rows), "--skip-bad", "-c", path)
    assert skipped.exit_code == 1
    assert "imported 1 readers" in skipped.output and "7 bad rows skipped" in skipped.output
    stored = json.loads(cli("subscribers", "list", "--json", "-c", path).output)[1:]
    assert [(r["email"], r["keywords"], r["timezone"]) for r in stored] == [
        ("a@example.org", ["mamba", "state space model"], "Europe/Paris")
    ]


def test_a_json_import_names_the_line_of_each_bad_object(make_config, tmp_path):
    path = str(make_config(subscribers=ONE_READER))
    rows = tmp_path / "readers.json"
    rows.write_text(
        '[\n  {"email": "a@example.org", "keywords": ["mamba"]},\n'
        '  {"email": "b@example.org",\n   "cadence": "weekly"},\n'
        '  {"email": "c@example.org", "max_papers": 0}\n]\n',
        encoding="utf-8",
    )
    result = cli("subscribers", "import", str(rows), "-c", path)
    assert result.exit_code == 2
    assert f"error: {rows}:3: (reader): cadence weekly needs weekday (mon, tue, ... sun)" in (
        result.output
    )
    assert f"error: {rows}:5: max_papers: expected greater than or equal to 1, got 0" in (
        result.output
    )
    broken = tmp_path / "broken.json"
    broken.write_text('[\n  {"email": "a@example.org"}\n  {"email": "b@example.org"}\n]')
    result = cli("subscribers", "import", str(broken), "-c", path)
    assert result.exit_code == 2 and f"{broken}:3: not valid JSON: expected ',' or ']'" in (
        result.output
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("", ": the file is empty; expected a header row"),
        ("email,keywords,email\n", ":1: column 'email' appears more than once"),
        ("email,colour\n", ":1: unknown column 'colour'; expected a header row of: name, email"),
        ("name,keywords\n", ":1: no email column"),
        ('[\n  {"email": "a@example.org"},\n  3\n]', ":3: expected an object per reader"),
        ('[\n  {"email": "a@example.org",}\n]', ":2: not valid JSON"),
    ],
)
def test_an_import_file_that_cannot_be_read_says_where(make_config, tmp_path, content, expected):
    path = str(make_config(subscribers=ONE_READER))
    rows = tmp_path / "rows.txt"
    rows.write_text(content, encoding="utf-8")
    result = cli("subscribers", "import", str(rows), "-c", path)
    assert result.exit_code == 2 and f"error: {rows}{expected}" in result.output


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_export_writes_what_import_reads_back(make_config, tmp_path, fmt):
    path = str(make_config(subscribers=ONE_READER))
    for args in (
        ("a@example.org", "--keyword", "mamba", "--keyword", "linear attention"),
        ("b@example.org", "--status", "pending", "--cadence", "weekly", "--weekday", "sun"),
        ("c@example.org", "--set", 'keywords=["semi;colon", {"term": "kv cache", "weight": 2}]'),
        ("d@example.org", "--set", 'interests=[{"name": "Vision", "keywords": ["diffusion"]}]'),
        ("e@example.org", "--tz", "America/New_York", "--send-hour", "0", "--channel", "feed"),
    ):
        assert cli("subscribers", "add", *args, "-c", path).exit_code == 0
    cli("subscribers", "remove", "e@example.org", "-c", path)
    exported = tmp_path / f"readers.{fmt}"
    assert (
        cli("subscribers", "export", "--format", fmt, "-o", str(exported), "-c", path).exit_code
        == 0
    )

    (tmp_path / "other").mkdir()
    other = make_config(subscribers=ONE_READER, folder=tmp_path / "other")
    imported = cli("subscribers", "import", str(exported), "-c", str(other))
    assert imported.exit_code == 0 and "5 added, 0 updated" in imported.output, imported.output
    again = cli("subscribers", "export", "--format", fmt, "-c", str(other)).output
    assert again == exported.read_text(encoding="utf-8")
    first = json.loads(cli("subscribers", "list", "--json", "-c", path).output)
    second = json.loads(cli("subscribers", "list", "--json", "-c", str(other)).output)
    same = ("name", "email", "status", "keywords", "interests", "timezone", "weekday", "channels")
    assert [[r.get(k) for k in same] for r in first] == [[r.get(k) for k in same] for r in second]


# --- ten thousand readers --------------------------------------------------------------------


@pytest.mark.slow
def test_ten_thousand_readers_import_from_csv_and_one_run_serves_the_active_ones(
    make_config, tmp_path
):
    path = make_config(subscribers="")
    daily_papers(tmp_path / "inbox", day(0), 6, 1)
    rows = tmp_path / "readers.csv"
    active = {f"reader{n}@example.org" for n in (0, 17, 4242, 9999)}
    with rows.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["email", "keywords", "status", "channels"])
        for n in range(10_000):
            email = f"reader{n}@example.org"
            status = "active" if email in active else ("paused", "pending")[n % 2]
            writer.writerow([email, f"state space;topic {n % 97}", status, "email"])
    digest = [sys.executable, "-m", "digest"]
    imported = subprocess.run(
        [*digest, "subscribers", "import", str(rows), "-c", str(path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    assert "10000 added, 0 updated" in imported.stdout
    with open_store(load_config(path)) as store:
        readers = store.list_subscribers()
        assert len(readers) == 10_000 and len({r.name for r in readers}) == 10_000
        names = {r.email: r.name for r in readers}
        with store.transaction() as conn:  # confirmed yesterday: their send hour has come
            yesterday = datetime.now(UTC) - timedelta(days=1)
            conn.execute(update(readers_table).values(confirmed_at=yesterday))
    ran = subprocess.run(
        [*digest, "run", "--json", "--date", day(0).isoformat(), "-c", str(path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    report = json.loads(ran.stdout)
    assert sorted(report["subscribers"]) == sorted(names[e] for e in active)
    assert all(entry["delivered"] == 6 for entry in report["subscribers"].values())
    assert emails_of(tmp_path / "out") == {names[e]: 1 for e in sorted(active, key=names.get)}
