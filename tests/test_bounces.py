"""Bounces and opt-outs in runs, against a real SMTP server (aiosmtpd) on loopback.

An address the server refuses for good (550 to RCPT) on ``bounce_runs`` runs in a row is
marked bouncing and gets no more attempts (counted at the server), while the other
readers get their mail every run; a 4xx never counts; a delivery the server takes clears
the count. A config reader whose address opted out gets nothing until it opts back in.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_smtp_delivery import smtp_settings
from test_subscribers import daily_papers

from conftest import SmtpRecorder, serving_smtp
from digest.cli import main
from digest.config import load_config
from digest.pipeline import open_store, run_once
from digest.readers import email_key

FIRST_DAY = date(2026, 3, 16)


class Refusing(SmtpRecorder):
    """Counts every RCPT by address; refuses those in ``refuse`` with their reply."""

    def __init__(self) -> None:
        super().__init__()
        self.refuse: dict[str, str] = {}
        self.rcpts: dict[str, int] = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.rcpts[address] = self.rcpts.get(address, 0) + 1
        if address in self.refuse:
            return self.refuse[address]
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)


@pytest.fixture
def server():
    recorder = Refusing()
    with serving_smtp(recorder) as port:
        yield recorder, port


def readers(*names: str) -> str:
    return "".join(
        f'\n[[subscribers]]\nname = "{name}"\nemail = "{name}@example.org"\n'
        'keywords = []\nchannels = ["email"]\n'
        for name in names
    )


def make(make_config, port: int, *names: str, **email: object) -> Path:
    return make_config(subscribers=readers(*names), extra=smtp_settings(port, **email))


def run_day(path: Path, n: int):
    """The run of day ``n``, with three new papers that day."""
    day = FIRST_DAY + timedelta(days=n)
    daily_papers(path.parent / "inbox", day, 3, 100 * (n + 1))
    at = datetime(day.year, day.month, day.day, 7, tzinfo=UTC)
    return run_once(load_config(path), today=day, clock=lambda: at)


def test_an_address_refused_on_three_runs_in_a_row_is_marked_bouncing_and_left_alone(
    make_config, server
):
    recorder, port = server
    path = make(make_config, port, "alice", "bob", "carol")
    with open_store(load_config(path)) as store:
        dana = store.add_subscriber(
            {"email": "dana@example.org", "channels": ["email"]}, datetime(2026, 3, 1, tzinfo=UTC)
        ).name
    recorder.refuse = {
        "carol@example.org": "550 5.1.1 No such user",
        "dana@example.org": "550 5.1.1 Mailbox unavailable",
    }
    seen = []
    for n in range(3):
        report = run_day(path, n)
        seen.append(dict(recorder.rcpts))
        assert len(recorder.for_recipient("alice@example.org")) == n + 1
        assert len(recorder.for_recipient("bob@example.org")) == n + 1
        assert not report.ok  # carol's and dana's deliveries failed
    # Each run retries the earlier failed digests too; a run counts once however many.
    assert [s["carol@example.org"] for s in seen] == [1, 3, 6]
    last = report.subscribers["carol"].deliveries[-1]
    assert last.status == "failed" and "550 5.1.1 No such user" in last.detail
    assert "refused on 3 runs in a row" in last.detail and "marked bouncing" in last.detail
    assert "marked bouncing" in report.subscribers[dana].deliveries[-1].detail
    with open_store(load_config(path)) as store:
        assert store.opted_out() == {"carol@example.org": "bouncing"}
        assert store.get_subscriber(dana).status == "bouncing"
        assert {b.email_key: b.runs for b in store.bounce_list()} == {
            "carol@example.org": 3,
            "dana@example.org": 3,
        }

    after = dict(recorder.rcpts)
    fourth = run_day(path, 3)
    assert fourth.ok and list(fourth.subscribers) == ["alice", "bob"]
    assert recorder.rcpts["carol@example.org"] == after["carol@example.org"]  # no attempt
    assert recorder.rcpts["dana@example.org"] == after["dana@example.org"]
    assert len(recorder.for_recipient("alice@example.org")) == 4

    state = CliRunner().invoke(main, ["state", "-c", str(path)])
    assert state.exit_code == 0, state.output
    assert f"bouncing store readers: {dana}" in state.output
    assert "config readers opted out: 1 bouncing" in state.output
    assert "carol@example.org" in state.output and "550 5.1.1 No such user" in state.output


def test_a_temporary_refusal_never_counts_as_a_bounce(make_config, server):
    recorder, port = server
    path = make(make_config, port, "alice", "erin", bounce_runs=1)
    recorder.refuse = {"erin@example.org": "450 4.2.1 Mailbox busy, try later"}
    for n in range(3):
        report = run_day(path, n)
        assert "erin" in report.subscribers  # still served, still retried
    assert recorder.rcpts["erin@example.org"] >= 3
    with open_store(load_config(path)) as store:
        assert store.bounce_list() == [] and store.opted_out() == {}


def test_a_delivery_the_server_takes_clears_the_count(make_config, server):
    recorder, port = server
    path = make(make_config, port, "finn")
    recorder.refuse = {"finn@example.org": "550 5.2.1 Mailbox disabled"}
    run_day(path, 0)
    run_day(path, 1)
    with open_store(load_config(path)) as store:
        assert [(b.email_key, b.runs) for b in store.bounce_list()] == [("finn@example.org", 2)]
    recorder.refuse = {}
    report = run_day(path, 2)
    assert report.ok and len(recorder.for_recipient("finn@example.org")) == 3  # all three days
    with open_store(load_config(path)) as store:
        assert store.bounce_list() == []
    recorder.refuse = {"finn@example.org": "550 5.2.1 Mailbox disabled"}
    run_day(path, 3)
    with open_store(load_config(path)) as store:  # counting starts again from one
        assert [b.runs for b in store.bounce_list()] == [1] and store.opted_out() == {}


def test_a_config_reader_who_opted_out_gets_nothing_until_it_opts_back_in(
    make_config, server, caplog
):
    recorder, port = server
    path = make(make_config, port, "alice", "gail")
    with open_store(load_config(path)) as store:
        store.opt_out(email_key("Gail@Example.org"), "unsubscribed", "one-click", datetime.now(UTC))
    with caplog.at_level("INFO", logger="digest"):
        report = run_day(path, 0)
    assert list(report.subscribers) == ["alice"]
    assert "config reader gail not served: its address opted out (unsubscribed)" in caplog.text
    assert recorder.rcpts.get("gail@example.org", 0) == 0
    state = CliRunner().invoke(main, ["state", "-c", str(path)])
    assert "config readers opted out: 1 unsubscribed" in state.output

    with open_store(load_config(path)) as store:
        store.opt_back_in(email_key("gail@example.org"))
    again = run_day(path, 1)
    assert list(again.subscribers) == ["alice", "gail"]
    assert len(recorder.for_recipient("gail@example.org")) == 1


def test_a_store_reader_refused_is_retried_at_its_send_hour_not_at_every_wake(make_config, server):
    from conftest import FixedClock
    from digest.scheduler import DigestJob, ReadersWake

    recorder, port = server
    path = make(make_config, port)
    start = datetime(2026, 3, 16, tzinfo=UTC)
    with open_store(load_config(path)) as store:
        name = store.add_subscriber(
            {"email": "hugo@example.org", "channels": ["email"], "send_hour": 7}, start
        ).name
    recorder.refuse = {"hugo@example.org": "550 5.1.1 No such user"}
    clock = FixedClock(start)
    runs = []

    def runner(config):
        runs.append(clock.now)
        return run_once(config, clock=clock, config_readers=False)

    wake = ReadersWake(DigestJob(load_config(path)), runner=runner, clock=clock)
    while clock.now < start + timedelta(days=4):
        if clock.now.hour == 0:
            daily_papers(path.parent / "inbox", clock.now.date(), 2, 10 * clock.now.day)
        wake()
        clock.advance(hours=1)
    assert runs == [start + timedelta(days=n, hours=7) for n in range(3)]  # then bouncing
    assert recorder.rcpts["hugo@example.org"] == 1 + 2 + 3  # each day's, and those before
    with open_store(load_config(path)) as store:
        assert store.get_subscriber(name).status == "bouncing"


def test_many_opted_out_config_readers_are_one_line_of_the_log(make_config, tmp_path, caplog):
    names = [f"reader{n}" for n in range(12)]
    path = make_config(subscribers=readers("kept", *names))
    with open_store(load_config(path)) as store:
        for name in names:
            store.opt_out(f"{name}@example.org", "unsubscribed", "one-click", datetime.now(UTC))
    with caplog.at_level("INFO", logger="digest"):
        report = run_day(path, 0)
    assert list(report.subscribers) == ["kept"]
    assert "12 config readers not served: their addresses opted out" in caplog.text
    assert "config reader reader0 not served" not in caplog.text
    assert sorted(p.name for p in (tmp_path / "out" / "email").iterdir()) == ["kept"]
