"""The scheduler: cron and time zones, misfires, crashes, signals, two schedulers."""

from __future__ import annotations

import json
import logging
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from digest.config import load_config
from digest.errors import ConfigError, LockedError
from digest.schedule_rules import next_fire_times, previous_fire_time, weekdays
from digest.scheduler import DigestJob, build_scheduler, missed_last_run

BERLIN = ZoneInfo("Europe/Berlin")


# --- cron lines and time zones (pure) ------------------------------------------------------


def test_weekday_fields_use_crontab_numbering():
    assert weekdays("1-5") == "mon,tue,wed,thu,fri"
    assert weekdays("0,6") == weekdays("sat,sun") == "sun,sat"
    assert weekdays("7") == "sun"
    assert weekdays("*/2") == "sun,tue,thu,sat"
    assert weekdays("*") == "*"


def test_weekday_0730_berlin_across_the_spring_dst_change():
    after = datetime(
        2026, 3, 26, 8, 0, tzinfo=BERLIN
    )  # Thursday; clocks go forward on Sunday the 29th
    fires = next_fire_times("30 7 * * 1-5", "Europe/Berlin", after, 4)
    assert [f.isoformat() for f in fires] == [
        "2026-03-27T07:30:00+01:00",  # Friday, still CET
        "2026-03-30T07:30:00+02:00",  # Monday, CEST: same wall time, one hour earlier in UTC
        "2026-03-31T07:30:00+02:00",
        "2026-04-01T07:30:00+02:00",
    ]
    assert [f.astimezone(UTC).hour for f in fires[:2]] == [6, 5]


def test_weekday_0730_berlin_across_the_autumn_dst_change():
    fires = next_fire_times(
        "30 7 * * 1-5", "Europe/Berlin", datetime(2026, 10, 23, 8, 0, tzinfo=BERLIN), 2
    )
    assert [f.isoformat() for f in fires] == [
        "2026-10-26T07:30:00+01:00",
        "2026-10-27T07:30:00+01:00",
    ]
    assert (
        previous_fire_time(
            "30 7 * * 1-5", "Europe/Berlin", datetime(2026, 10, 25, 12, 0, tzinfo=BERLIN)
        ).isoformat()
        == "2026-10-23T07:30:00+02:00"
    )


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('cron = "30 7 * *"', "expected 5 cron fields"),
        ('cron = "61 7 * * 1-5"', "not a valid cron line"),
        ('cron = "30 7 * * 1-9"', "expected a weekday 0-7"),
        ('cron = "30 7 * * 1-5"\ntimezone = "Mars/Olympus"', "expected an IANA time zone"),
    ],
)
def test_bad_schedules_are_config_errors_that_say_what_is_wrong(make_config, table, message):
    config = make_config(extra=f"\n[schedule]\n{table}\n")
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(config)
    assert "schedule." in caught.value.message


# --- misfires, with a clock that travels ---------------------------------------------------


def _scheduled(make_config, *, grace: int = 60):
    config = load_config(
        make_config(
            extra=f'\n[schedule]\ncron = "30 7 * * 1-5"\ntimezone = "Europe/Berlin"\nmisfire_grace_minutes = {grace}\n'
        )
    )
    calls: list[datetime] = []
    job = DigestJob(config, runner=lambda _config: calls.append(datetime.now(BERLIN)))
    job._reloaded = lambda: config  # the config file does not change in these tests
    return build_scheduler(config, job), calls


def _wake(scheduler, traveller, at: datetime) -> None:
    traveller.move_to(at)
    scheduler.resume()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and scheduler.get_job("digest").next_run_time <= at:
        time.sleep(0.05)
    time.sleep(0.3)  # let a submitted run finish


def test_a_run_missed_while_asleep_fires_once_on_wake(make_config):
    with time_machine.travel(datetime(2026, 3, 27, 7, 0, tzinfo=BERLIN), tick=True) as traveller:
        scheduler, calls = _scheduled(make_config)
        scheduler.start(paused=True)  # the host sleeps through 07:30
        try:
            _wake(scheduler, traveller, datetime(2026, 3, 27, 7, 50, tzinfo=BERLIN))
            assert len(calls) == 1
            assert (
                scheduler.get_job("digest").next_run_time.isoformat() == "2026-03-30T07:30:00+02:00"
            )
        finally:
            scheduler.shutdown()


def test_two_missed_runs_coalesce_into_one(make_config):
    with time_machine.travel(datetime(2026, 3, 26, 7, 0, tzinfo=BERLIN), tick=True) as traveller:
        scheduler, calls = _scheduled(make_config, grace=24 * 60)
        scheduler.start(paused=True)
        try:  # asleep from Thursday 07:00 to Friday 07:45: Thursday's and Friday's runs missed
            _wake(scheduler, traveller, datetime(2026, 3, 27, 7, 45, tzinfo=BERLIN))
            assert len(calls) == 1
        finally:
            scheduler.shutdown()


def test_a_run_missed_by_more_than_the_grace_is_skipped(make_config):
    with time_machine.travel(datetime(2026, 3, 27, 7, 0, tzinfo=BERLIN), tick=True) as traveller:
        scheduler, calls = _scheduled(make_config, grace=30)
        scheduler.start(paused=True)
        try:
            _wake(scheduler, traveller, datetime(2026, 3, 27, 9, 0, tzinfo=BERLIN))
            assert calls == []
            assert (
                scheduler.get_job("digest").next_run_time.isoformat() == "2026-03-30T07:30:00+02:00"
            )
        finally:
            scheduler.shutdown()


def test_a_crash_in_one_run_is_logged_and_the_schedule_goes_on(make_config, caplog):
    config = load_config(make_config(extra='\n[schedule]\ncron = "30 7 * * 1-5"\n'))
    outcomes = iter([RuntimeError("boom"), LockedError("another run holds the lock /x.lock"), None])

    def runner(_config):
        outcome = next(outcomes)
        if outcome is not None:
            raise outcome

    job = DigestJob(config, runner=runner)
    with caplog.at_level(logging.INFO, logger="digest"):
        job()
        job()
        job()
    assert "scheduled run crashed; the next one will still happen" in caplog.text
    assert "RuntimeError: boom" in caplog.text
    assert "scheduled run skipped: another run holds the lock /x.lock" in caplog.text
    assert "scheduled run finished" in caplog.text


def test_a_broken_config_edit_keeps_the_last_good_config(make_config, caplog):
    path = make_config(extra='\n[schedule]\ncron = "30 7 * * 1-5"\n')
    config = load_config(path)
    seen = []
    job = DigestJob(config, runner=seen.append)
    path.write_text(path.read_text() + "\nnot toml at all [[[\n")
    with caplog.at_level(logging.ERROR, logger="digest"):
        job()
    assert seen == [config]
    assert "config not reloaded, using the last good one" in caplog.text


def test_catch_up_sees_a_missed_run(make_config, seeds):
    path = make_config(extra='\n[schedule]\ncron = "30 7 * * *"\ntimezone = "UTC"\n')
    shutil.copy(seeds[2], path.parent / "inbox" / "capture.txt")
    config = load_config(path)
    now = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)
    assert missed_last_run(config, now)  # no store, no run yet
    from digest.pipeline import run_once

    run_once(config, clock=lambda: datetime(2026, 3, 14, 7, 30, 5, tzinfo=UTC))
    assert not missed_last_run(config, now)
    assert missed_last_run(config, now + timedelta(days=1))


# --- the real thing: `digest schedule` in a subprocess --------------------------------------

# A run that pauses inside its first delivery until the test lets it go on.
PAUSING = textwrap.dedent(
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
    sys.argv = ["digest", "schedule", "--config", sys.argv[3]]
    main()
    """
)


def _cron_in(seconds: int) -> str:
    at = datetime.now(UTC) + timedelta(seconds=seconds)
    return f"{at.second} {at.minute} {at.hour} * * *"


def _wait(predicate, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.slow
def test_schedule_runs_keeps_running_and_finishes_the_run_in_progress_on_sigterm(
    make_config, seeds, tmp_path
):
    config = make_config(
        extra=f'\n[schedule]\ncron = "{_cron_in(4)}"\ntimezone = "UTC"\ncatch_up = false\n'
    )
    shutil.copy(seeds[2], config.parent / "inbox" / "capture.txt")
    paused, go_on = tmp_path / "paused", tmp_path / "go-on"
    child = subprocess.Popen(
        [sys.executable, "-c", PAUSING, str(paused), str(go_on), str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait(paused.exists, "the scheduled run to start delivering")
        assert child.poll() is None  # still running, mid-run
        child.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert child.poll() is None  # it does not stop in the middle of a run
        go_on.touch()
        _out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, err
    assert "next digest run at" in err
    assert "SIGTERM received: finishing the run in progress" in err
    assert (
        config.parent / "out" / "email" / "all" / f"{datetime.now(UTC).date().isoformat()}.eml"
    ).exists()
    state = subprocess.run(
        [sys.executable, "-m", "digest", "state", "--config", str(config), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    summary = json.loads(state.stdout)
    assert summary["runs"][0]["status"] == "ok"  # the run finished and was recorded
    assert summary["subscribers"][0]["delivered_papers"] == 38


# A scheduler that has imported all it runs, says so, and starts once the test says go:
# its fire time can then be set from when both are up, not guessed before a slow start.
STARTING_ON_CUE = textwrap.dedent(
    """
    import pathlib, sys, time
    from digest.cli import main
    ready, go = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    ready.touch()
    while not go.exists():
        time.sleep(0.02)
    sys.argv = ["digest", "schedule", "--config", sys.argv[3]]
    main()
    """
)


@pytest.mark.slow
def test_two_schedulers_on_one_store_deliver_once(make_config, seeds, tmp_path):
    config = tmp_path / "config.toml"
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{k}" for k in range(2)]
    logs = [tmp_path / f"scheduler-{k}.log" for k in range(2)]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", STARTING_ON_CUE, str(ready[k]), str(go), str(config)],
            stdout=subprocess.DEVNULL,
            stderr=logs[k].open("w"),
            text=True,
        )
        for k in range(2)
    ]
    try:
        _wait(lambda: all(r.exists() for r in ready), "both schedulers to be ready")
        fire = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=4)
        cron = f"{fire.second} {fire.minute} {fire.hour} * * *"
        make_config(extra=f'\n[schedule]\ncron = "{cron}"\ntimezone = "UTC"\ncatch_up = false\n')
        shutil.copy(seeds[2], config.parent / "inbox" / "capture.txt")
        go.touch()
        outcomes = ("scheduled run finished", "scheduled run skipped")
        _wait(
            lambda: all(any(o in log.read_text() for o in outcomes) for log in logs),
            "both schedulers to fire",
        )
    finally:
        for child in children:
            child.send_signal(signal.SIGTERM)
    for child in children:
        child.wait(timeout=60)
    texts = [log.read_text() for log in logs]
    assert all(child.returncode == 0 for child in children), texts
    for text in texts:  # both were up before the fire time, so both fired at it
        assert f"next digest run at {fire.isoformat()}" in text, text
    emails = list((config.parent / "out" / "email").rglob("*.eml"))
    assert len(emails) == 1
    state = subprocess.run(
        [sys.executable, "-m", "digest", "state", "--config", str(config), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(state.stdout)["subscribers"][0]["delivered_papers"] == 38
    both = "\n".join(texts)
    assert "scheduled run finished" in both
    assert (
        "skipped: another run holds the lock" in both or both.count("scheduled run finished") == 2
    )


def test_schedule_without_a_schedule_table_says_how_to_add_one(make_config):
    result = subprocess.run(
        [sys.executable, "-m", "digest", "schedule", "--config", str(make_config())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "no [schedule] table" in result.stderr and 'cron = "30 7 * * 1-5"' in result.stderr
