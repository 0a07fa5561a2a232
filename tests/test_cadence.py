"""Cadences: when a store reader is due (daily or weekly, in its own time zone, at its send
hour, through daylight saving changes), and runs that serve only the readers whose time
has come, finish what a crash left, and give a weekly reader the best of its week."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from test_subscribers import daily_papers, emails_of

from digest.cadence import is_due, latest_moment, next_moment, send_moment
from digest.channels import build_channels
from digest.config import load_config
from digest.pipeline import open_store, run_once
from digest.previews import preview
from digest.readers import ReaderState

BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# --- send moments (pure) -------------------------------------------------------------------


def test_a_send_hour_is_local_time_on_both_sides_of_a_dst_change():
    assert send_moment(date(2026, 3, 27), 7, BERLIN) == utc(2026, 3, 27, 6)  # CET
    assert send_moment(date(2026, 3, 30), 7, BERLIN) == utc(2026, 3, 30, 5)  # CEST
    assert send_moment(date(2026, 3, 6), 7, NEW_YORK) == utc(2026, 3, 6, 12)  # EST
    assert send_moment(date(2026, 3, 9), 7, NEW_YORK) == utc(2026, 3, 9, 11)  # EDT


def test_a_send_hour_that_does_not_exist_happens_at_the_first_valid_time_after_it():
    # 02:00 is skipped on spring-forward days: the clocks go from 02:00 to 03:00.
    berlin = send_moment(date(2026, 3, 29), 2, BERLIN)
    assert berlin == utc(2026, 3, 29, 1) and berlin.astimezone(BERLIN).hour == 3
    new_york = send_moment(date(2026, 3, 8), 2, NEW_YORK)
    assert new_york == utc(2026, 3, 8, 7) and new_york.astimezone(NEW_YORK).hour == 3
    # Lord Howe Island moves by half an hour: 02:00 becomes 02:30.
    lord_howe = ZoneInfo("Australia/Lord_Howe")
    moment = send_moment(date(2026, 10, 4), 2, lord_howe).astimezone(lord_howe)
    assert (moment.hour, moment.minute) == (2, 30)


def test_a_send_hour_that_happens_twice_happens_once_at_its_first_occurrence():
    # 01:00 happens twice in New York on 1 November 2026 (EDT, then EST).
    assert send_moment(date(2026, 11, 1), 1, NEW_YORK) == utc(2026, 11, 1, 5)
    assert send_moment(date(2026, 10, 25), 2, BERLIN) == utc(2026, 10, 25, 0)  # CEST's 02:00
    daily = ReaderState(timezone="America/New_York", send_hour=1)
    served = utc(2026, 11, 1, 5, 1)  # at the first 01:00
    assert not is_due(daily, served, utc(2026, 10, 1), utc(2026, 11, 1, 6, 30))  # second 01:00
    assert is_due(daily, served, utc(2026, 10, 1), utc(2026, 11, 2, 6))


def test_a_weekly_reader_is_due_on_its_weekday_at_its_hour_in_its_zone():
    weekly = ReaderState(cadence="weekly", weekday="thu", timezone="America/New_York")
    assert latest_moment(weekly, utc(2026, 3, 12, 10, 59)) == utc(2026, 3, 5, 12)  # last Thu EST
    assert latest_moment(weekly, utc(2026, 3, 12, 11)) == utc(2026, 3, 12, 11)  # Thu, EDT now
    assert next_moment(weekly, utc(2026, 3, 12, 11)) == utc(2026, 3, 19, 11)
    served = utc(2026, 3, 12, 11, 5)
    since = utc(2026, 3, 1)
    assert not is_due(weekly, served, since, utc(2026, 3, 18, 23))
    assert is_due(weekly, served, since, utc(2026, 3, 19, 11))


def test_a_new_reader_waits_for_its_first_send_hour_after_it_confirmed():
    daily = ReaderState(timezone="Europe/Berlin", send_hour=7)
    at_night = datetime(2026, 3, 16, 3, 0, tzinfo=BERLIN)
    assert not is_due(daily, None, at_night, at_night + timedelta(minutes=5))  # not at sign-up
    assert is_due(daily, None, at_night, datetime(2026, 3, 16, 7, 0, tzinfo=BERLIN))
    after_hour = datetime(2026, 3, 16, 8, 0, tzinfo=BERLIN)
    assert not is_due(daily, None, after_hour, datetime(2026, 3, 16, 23, 0, tzinfo=BERLIN))
    assert is_due(daily, None, after_hour, datetime(2026, 3, 17, 7, 0, tzinfo=BERLIN))


# --- runs: store readers served when their time has come -----------------------------------

CONFIG_READER = """
[[subscribers]]
name = "cfg"
email = "cfg@example.org"
keywords = []
max_papers = 100
channels = ["email"]
"""


def add_reader(config_path: Path, email: str, at: datetime, **values: object) -> str:
    with open_store(load_config(config_path)) as store:
        fields = {"email": email, "channels": ["email"], "max_papers": 100} | values
        return store.add_subscriber(fields, at).name


def run_at(config_path: Path, at: datetime, **options: object):
    config = load_config(config_path)
    return run_once(config, today=at.astimezone(UTC).date(), clock=lambda: at, **options)


def test_a_store_reader_is_served_once_a_period_and_config_readers_every_run(make_config, tmp_path):
    path = make_config(subscribers=CONFIG_READER)
    inbox = tmp_path / "inbox"
    name = add_reader(path, "dana@example.org", utc(2026, 3, 15, 20), send_hour=7)
    daily_papers(inbox, date(2026, 3, 16), 3, 1)
    early = run_at(path, utc(2026, 3, 16, 6))
    assert list(early.subscribers) == ["cfg"]  # dana's 07:00 has not come
    first = run_at(path, utc(2026, 3, 16, 7))
    assert list(first.subscribers) == ["cfg", name] and first.subscribers[name].delivered == 3
    daily_papers(tmp_path / "inbox", date(2026, 3, 17), 2, 11)  # new papers later that day
    again = run_at(path, utc(2026, 3, 16, 9))
    assert list(again.subscribers) == ["cfg"]  # served today already
    assert again.subscribers["cfg"].delivered == 2
    forced = run_at(path, utc(2026, 3, 16, 10), only=[name])  # `digest run --subscriber`
    assert list(forced.subscribers) == [name] and forced.subscribers[name].delivered == 2
    assert emails_of(tmp_path / "out") == {"cfg": 2, name: 2}
    with open_store(load_config(path)) as store:
        assert store.served_times([name, "cfg"]) == {name: utc(2026, 3, 16, 10)}


def test_a_reader_with_nothing_new_is_served_and_sent_nothing(make_config, tmp_path):
    path = make_config(subscribers="")
    name = add_reader(path, "erin@example.org", utc(2026, 3, 15), send_hour=7)
    report = run_at(path, utc(2026, 3, 16, 7, 15))
    assert report.subscribers[name].candidates == 0 and report.subscribers[name].deliveries == []
    assert emails_of(tmp_path / "out") == {}
    assert run_at(path, utc(2026, 3, 16, 8)).subscribers == {}  # its day is done


class Crash(BaseException):
    """Stands for the process dying: it escapes every ``except Exception``."""


class CrashingEmail:
    name = "email"

    def deliver(self, digest, subscriber, context):
        raise Crash("killed while sending")


def test_deliveries_a_crash_left_are_finished_by_the_next_run_even_when_not_due(
    make_config, tmp_path
):
    path = make_config(subscribers="")
    name = add_reader(path, "finn@example.org", utc(2026, 3, 15), send_hour=7)
    daily_papers(tmp_path / "inbox", date(2026, 3, 16), 4, 1)
    channels = build_channels(load_config(path)) | {"email": CrashingEmail()}
    with pytest.raises(Crash):
        run_at(path, utc(2026, 3, 16, 7), channels=channels)
    assert emails_of(tmp_path / "out") == {}
    daily_papers(tmp_path / "inbox", date(2026, 3, 17), 2, 11)  # new papers: not its time
    later = run_at(path, utc(2026, 3, 16, 8))
    entry = later.subscribers[name]
    assert [d.status for d in entry.deliveries] == ["delivered"]
    assert entry.candidates == 0 and entry.delivered == 4  # yesterday's digest, nothing new
    assert emails_of(tmp_path / "out") == {name: 1}
    assert run_at(path, utc(2026, 3, 16, 9)).subscribers == {}
    tomorrow = run_at(path, utc(2026, 3, 17, 7))
    assert tomorrow.subscribers[name].delivered == 2


def test_run_subscriber_finds_store_readers_and_refuses_inactive_ones(make_config, tmp_path):
    from click.testing import CliRunner

    from digest.cli import main

    path = make_config(subscribers="")
    daily_papers(tmp_path / "inbox", date.today(), 2, 1)
    now = datetime.now(UTC)
    name = add_reader(path, "gus@example.org", now, send_hour=(now.hour + 12) % 24)
    paused = add_reader(path, "hal@example.org", now, status="paused")
    ran = CliRunner().invoke(main, ["run", "-c", str(path), "--subscriber", name, "--json"])
    assert ran.exit_code == 0, ran.output
    assert emails_of(tmp_path / "out") == {name: 1}
    refused = CliRunner().invoke(main, ["run", "-c", str(path), "--subscriber", paused])
    assert refused.exit_code == 2 and "the store reader is paused" in refused.output
    unknown = CliRunner().invoke(main, ["run", "-c", str(path), "--subscriber", "nobody"])
    assert unknown.exit_code == 2 and "no reader 'nobody'" in unknown.output


# --- weekly: the best of the week ------------------------------------------------------------


def test_a_weekly_digest_keeps_max_papers_for_the_week_and_a_daily_one_per_listing_day(
    make_config, tmp_path
):
    path = make_config(subscribers="")
    monday = date(2026, 3, 16)
    weekly = add_reader(
        path, "ivy@example.org", utc(2026, 3, 1), cadence="weekly", weekday="mon", max_papers=5
    )
    daily = add_reader(path, "jo@example.org", utc(2026, 3, 1), max_papers=5)
    with open_store(load_config(path)) as store:  # both served on the Monday before
        store.register_subscribers([weekly, daily], monday - timedelta(days=7))
        store.mark_served([weekly], utc(2026, 3, 9, 7))
        store.mark_served([daily], utc(2026, 3, 16, 7))
    daily_papers(tmp_path / "inbox", monday - timedelta(days=7), 1, 900)
    run_at(path, utc(2026, 3, 9, 7, 30), only=[weekly, daily])  # last week's digests
    for n in range(1, 6):  # Tuesday to Saturday: 6 papers a day
        daily_papers(tmp_path / "inbox", monday - timedelta(days=7 - n), 6, 10 * n)
    with open_store(load_config(path)) as store:  # the daily reader was away all week
        store.mark_served([daily], utc(2026, 3, 9, 8))
    # `digest preview` shows what the run will send: the same budgets.
    config = load_config(path)
    previewed = {
        name: preview(config, name, fmt="text", today=monday, clock=lambda: utc(2026, 3, 16, 7))
        for name in (weekly, daily)
    }
    assert len(previewed[weekly][0].papers) == 5
    assert len(previewed[daily][0].papers) == 25
    report = run_at(path, utc(2026, 3, 16, 7))
    assert report.subscribers[weekly].candidates == 30
    assert report.subscribers[weekly].selected == 5  # the best five of the week
    assert report.subscribers[daily].candidates == 30
    assert report.subscribers[daily].selected == 25  # 5 for each of 5 listing days


def test_a_weekly_reader_with_an_empty_week_gets_nothing(make_config, tmp_path):
    path = make_config(subscribers="")
    weekly = add_reader(path, "kim@example.org", utc(2026, 3, 1), cadence="weekly", weekday="mon")
    daily_papers(tmp_path / "inbox", date(2026, 3, 9), 2, 1)
    assert run_at(path, utc(2026, 3, 9, 7)).subscribers[weekly].delivered == 2
    report = run_at(path, utc(2026, 3, 16, 7))
    assert report.subscribers[weekly].candidates == 0
    assert report.subscribers[weekly].deliveries == []
    assert emails_of(tmp_path / "out") == {weekly: 1}


# --- acceptance: five weeks of wakes across both March 2026 DST changes ---------------------


def test_weekly_and_daily_readers_across_both_dst_changes_hour_by_hour(
    make_config, tmp_path, smtp_server
):
    """Berlin (weekly, Monday 07:00), New York (weekly, Thursday 07:00) and New York
    (daily, 18:00), woken every hour from 2 March to 5 April 2026 (the US changes on 8
    March, the EU on 29 March), with new papers every day but 17 to 26 March."""
    from test_smtp_delivery import parse, smtp_settings

    from conftest import FixedClock
    from digest.scheduler import DigestJob, ReadersWake

    recorder, port = smtp_server
    path = make_config(subscribers="", extra=smtp_settings(port))
    start = utc(2026, 3, 2)
    berlin = add_reader(
        path, "berlin@example.org", start, cadence="weekly", weekday="mon",
        timezone="Europe/Berlin", send_hour=7,
    )  # fmt: skip
    new_york = add_reader(
        path, "ny@example.org", start, cadence="weekly", weekday="thu",
        timezone="America/New_York", send_hour=7,
    )  # fmt: skip
    daily = add_reader(path, "daily@example.org", start, timezone="America/New_York", send_hour=18)
    quiet = {date(2026, 3, 17) + timedelta(days=n) for n in range(10)}
    clock = FixedClock(start)
    runs: list[datetime] = []

    def runner(config):
        runs.append(clock.now)
        return run_once(config, clock=clock, config_readers=False)

    wake = ReadersWake(DigestJob(load_config(path)), runner=runner, clock=clock)
    while clock.now < utc(2026, 4, 6):
        if clock.now.hour == 0 and clock.now.date() not in quiet:
            number = 10 * (clock.now - start).days + 1
            daily_papers(tmp_path / "inbox", clock.now.date(), 2, number)
        wake()
        clock.advance(hours=1)

    def sent_to(address: str, zone: ZoneInfo) -> list[datetime]:
        return [
            parse(content)["Date"].datetime.astimezone(zone)
            for content in recorder.for_recipient(address)
        ]

    berlin_sent = sent_to("berlin@example.org", BERLIN)
    assert [(d.date().isoformat(), d.hour, d.utcoffset().seconds // 3600) for d in berlin_sent] == [
        ("2026-03-02", 7, 1),
        ("2026-03-09", 7, 1),
        ("2026-03-16", 7, 1),  # 23 March: a week without papers, nothing sent
        ("2026-03-30", 7, 2),  # CEST
    ]
    ny_sent = sent_to("ny@example.org", NEW_YORK)
    assert [(d.date().isoformat(), d.hour) for d in ny_sent] == [
        ("2026-03-05", 7),  # EST: 12:00 UTC
        ("2026-03-12", 7),  # EDT: 11:00 UTC
        ("2026-03-19", 7),  # 26 March: nothing new since the 19th, nothing sent
        ("2026-04-02", 7),
    ]
    daily_sent = sent_to("daily@example.org", NEW_YORK)
    expected_days = [
        date(2026, 3, 2) + timedelta(days=n)
        for n in range(35)
        if date(2026, 3, 2) + timedelta(days=n) not in quiet
    ]
    assert [d.date() for d in daily_sent] == expected_days
    assert {d.hour for d in daily_sent} == {18}
    # The runs were the readers' moments only: the other wakes found nobody due.
    assert len(runs) == len(expected_days) + len(quiet) + 5 + 5
    with open_store(load_config(path)) as store:
        assert set(store.served_times([berlin, new_york, daily])) == {berlin, new_york, daily}


def test_the_scheduler_wakes_every_quarter_hour_and_runs_only_for_due_store_readers(
    make_config, tmp_path
):
    """A zone 30 minutes off the hour (Kolkata, UTC+05:30) is served at its 07:00, the
    01:30 UTC wake; the other wakes find nobody due and run nothing. Config readers are
    left to the cron line's run."""
    from conftest import FixedClock
    from digest.scheduler import WAKE_ID, DigestJob, ReadersWake, build_scheduler

    path = make_config(subscribers=CONFIG_READER, extra='\n[schedule]\ncron = "0 9 * * *"\n')
    config = load_config(path)
    job = DigestJob(config)
    scheduler = build_scheduler(config, job)
    wake = scheduler.get_job(WAKE_ID)
    fires = [wake.trigger.get_next_fire_time(None, utc(2026, 3, 16, 0, 5))]
    fires.append(wake.trigger.get_next_fire_time(fires[0], fires[0] + timedelta(seconds=1)))
    assert fires == [utc(2026, 3, 16, 0, 15), utc(2026, 3, 16, 0, 30)]

    name = add_reader(path, "lata@example.org", utc(2026, 3, 15, 2), timezone="Asia/Kolkata")
    daily_papers(tmp_path / "inbox", date(2026, 3, 16), 2, 1)
    clock = FixedClock(utc(2026, 3, 16, 0, 0))
    reports = []

    def runner(config):
        reports.append((clock.now, run_once(config, clock=clock, config_readers=False)))

    quarter_hours = ReadersWake(job, runner=runner, clock=clock)
    for _quarter in range(12):  # 00:00 to 02:45 UTC
        quarter_hours()
        clock.advance(minutes=15)
    assert [(at, list(report.subscribers)) for at, report in reports] == [
        (utc(2026, 3, 16, 1, 30), [name])
    ]
    assert emails_of(tmp_path / "out") == {name: 1}


def test_wakes_between_cron_runs_never_make_health_overdue(make_config, tmp_path):
    from digest.scheduler import DigestJob, ReadersWake
    from digest.serve import health_of

    path = make_config(
        subscribers=CONFIG_READER, extra='\n[schedule]\ncron = "0 9 * * *"\ntimezone = "UTC"\n'
    )
    config = load_config(path)
    name = add_reader(path, "mo@example.org", utc(2026, 3, 15), send_hour=18)
    daily_papers(tmp_path / "inbox", date(2026, 3, 16), 2, 1)
    run_at(path, utc(2026, 3, 16, 9))  # the cron line's run
    clock = [utc(2026, 3, 16, 9, 15)]
    ran = []

    def runner(config):
        ran.append(run_once(config, clock=lambda: clock[0], config_readers=False))

    wake = ReadersWake(DigestJob(config), runner=runner, clock=lambda: clock[0])
    while clock[0] < utc(2026, 3, 17, 8, 45):
        wake()
        assert health_of(config, clock[0])["healthy"], clock[0]
        clock[0] += timedelta(minutes=15)
    assert [list(report.subscribers) for report in ran] == [[name]]  # 18:00 only
    overdue = health_of(config, utc(2026, 3, 17, 10, 30))  # the 09:00 run never came
    assert not overdue["healthy"] and "overdue" in overdue["problems"][0]


KILL_AT_FIRST_DELIVERY = """
from digest.channels.email_files import EmlFileChannel
def deliver(self, *args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
EmlFileChannel.deliver = deliver
"""


@pytest.mark.slow
def test_a_run_killed_after_recording_a_digest_is_finished_by_the_next_though_not_due(
    make_config, tmp_path
):
    """The real command line, SIGKILLed between the digest's record and its delivery:
    the reader is then served for this period, and the next run, minutes later, finishes
    the delivery without a second digest."""
    import json
    import signal

    from test_crash_safety import run_cli

    from conftest import day

    path = make_config(subscribers="")
    daily_papers(tmp_path / "inbox", day(0), 3, 1)
    now = datetime.now(UTC)
    name = add_reader(
        path, "nia@example.org", now - timedelta(days=2), send_hour=(now.hour - 1) % 24
    )
    killed = run_cli(path, patch=KILL_AT_FIRST_DELIVERY)
    assert killed.returncode == -signal.SIGKILL
    assert emails_of(tmp_path / "out") == {}
    with open_store(load_config(path)) as store:
        assert name in store.served_times([name])  # its period is done: it is not due
        assert [d.status for d in store.pending_deliveries(name)] == ["pending"]

    daily_papers(tmp_path / "inbox", day(0) + timedelta(days=1), 2, 11)  # not its time
    again = run_cli(path, "--json")
    assert again.returncode == 0, again.stderr
    entry = json.loads(again.stdout)["subscribers"][name]
    assert entry["candidates"] == 0 and entry["delivered"] == 3
    assert [d["status"] for d in entry["deliveries"]] == ["delivered"]
    assert emails_of(tmp_path / "out") == {name: 1}
    third = run_cli(path, "--json")
    assert json.loads(third.stdout)["subscribers"] == {}
