"""The email channel under faults, against real SMTP servers on loopback (aiosmtpd).

Counts are what the servers received: a reader gets one copy, or, when the server took a
message and never confirmed it, at most two (the one resend of a later run, recognisably
the same message by its Message-ID).
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from test_smtp_delivery import READERS, cli, parse, run, smtp_settings, subscribers

from conftest import SmtpRecorder, free_port
from digest.config import load_config
from digest.errors import ConfigError
from digest.store import Store

pytestmark = pytest.mark.slow
ADDRESSES = [f"{name}@example.org" for name in READERS]


class TakesThenHangsUp(SmtpRecorder):
    """Stores each message, then closes the connection instead of answering 250."""

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), envelope.original_content))
        server.transport.close()
        return "421 closing"  # never reaches the client


class TakesThenAnswersLate(SmtpRecorder):
    """Stores each message and answers 250 only after ``delay`` seconds."""

    delay = 2.0

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), envelope.original_content))
        await asyncio.sleep(self.delay)
        return "250 2.0.0 Queued, eventually"


class HangsUpAtRcpt(SmtpRecorder):
    """Closes the connection at the first RCPT: a failure before any message was sent."""

    dropped = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if not self.dropped:
            self.dropped += 1
            server.transport.close()
            return "421 closing"
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)


@contextmanager
def serve(handler: SmtpRecorder, port: int | None = None, **options: object) -> Iterator[int]:
    """A real SMTP server with ``handler`` on loopback, on ``port`` or a free one."""
    port = port or free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def config_for(make_config, seeds, port: int, readers=READERS, **email: object) -> Path:
    config = make_config(subscribers=subscribers(readers), extra=smtp_settings(port, **email))
    for capture in seeds:
        shutil.copy(capture, config.parent / "inbox" / capture.name)
    return config


def copies(recorder: SmtpRecorder, addresses=ADDRESSES) -> list[int]:
    return [len(recorder.for_recipient(address)) for address in addresses]


def email_statuses(config: Path) -> dict[str, str]:
    """Each reader's email delivery status in the store (one digest each here)."""
    with Store.open(config.parent / "state" / "digest.db") as store:
        return {
            name: {d.channel: d.status for d in store.pending_deliveries(name)}.get("email", "done")
            for name in READERS
        }


@pytest.mark.parametrize("handler", [TakesThenHangsUp, TakesThenAnswersLate])
def test_a_message_sent_without_confirmation_is_resent_once_on_a_later_run_only(
    make_config, seeds, handler
):
    recorder = handler()
    with serve(recorder) as port:
        config = config_for(make_config, seeds, port, retries=3, timeout=1)
        first = run(config)
        assert copies(recorder) == [1, 1, 1]  # not sent again within the run
        for name in READERS:
            [email] = [d for d in first.subscribers[name].deliveries if d.channel == "email"]
            assert email.status == "unknown", (name, email)
        assert email_statuses(config) == dict.fromkeys(READERS, "unknown")
        assert not first.ok
        state = cli("state", "--config", str(config))
        assert state.stdout.count("outcome unknown 1") == 3, state.stdout

        second = run(config, 1)  # the one resend, same message
        assert copies(recorder) == [1 + 1] * 3
        assert {d.status for s in second.subscribers.values() for d in s.deliveries} == {
            "unconfirmed"
        }
        for address in ADDRESSES:
            ids = {parse(content)["Message-ID"] for content in recorder.for_recipient(address)}
            assert len(ids) == 1, address

        third = run(config, 2)  # unconfirmed twice: never sent again
        assert copies(recorder) == [2, 2, 2]
        assert all(s.deliveries == [] for s in third.subscribers.values())
        data = json.loads(cli("state", "--config", str(config), "--json").stdout)
        assert [s["unconfirmed_deliveries"] for s in data["subscribers"]] == [1, 1, 1]


def test_the_resend_confirmed_is_done(make_config, seeds):
    recorder = TakesThenHangsUp()
    with serve(recorder) as port:
        config = config_for(make_config, seeds, port, timeout=1)
        run(config)
    good = SmtpRecorder()
    with serve(good, port):  # the server mends its ways
        later = run(config, 1)
        again = run(config, 2)
    assert later.ok and again.ok
    assert copies(recorder) == [1, 1, 1] and copies(good) == [1, 1, 1]
    assert email_statuses(config) == dict.fromkeys(READERS, "done")


def test_a_connection_lost_before_the_message_was_sent_is_retried_in_the_run(make_config, seeds):
    recorder = HangsUpAtRcpt()
    with serve(recorder) as port:
        report = run(config_for(make_config, seeds, port))
    assert report.ok, report.to_json()
    assert copies(recorder) == [1, 1, 1]
    assert recorder.sessions == 2


@pytest.mark.parametrize("smtputf8", [True, False])
def test_an_internationalised_address_never_costs_the_next_reader_their_email(
    make_config, seeds, smtputf8
):
    readers = {"juergen": [], "bob": []}
    recorder = SmtpRecorder()
    with serve(recorder, enable_SMTPUTF8=smtputf8) as port:
        config = config_for(make_config, seeds, port, readers=readers)
        config.write_text(config.read_text().replace("juergen@example.org", "jürgen@example.org"))
        reports = [run(config, n) for n in range(2)]
    assert copies(recorder, ["bob@example.org"]) == [1]
    juergen = copies(recorder, ["jürgen@example.org"])
    if smtputf8:
        assert juergen == [1] and all(r.ok for r in reports)
    else:
        assert juergen == [0]
        for report in reports:  # fails clearly, every run, for that reader alone
            assert "does not offer SMTPUTF8, which the address jürgen@example.org needs" in (
                report.subscribers["juergen"].error or ""
            )
            assert report.subscribers["bob"].error is None


def test_an_internationalised_domain_goes_out_in_its_ascii_form(make_config, seeds):
    recorder = SmtpRecorder()
    with serve(recorder) as port:  # no SMTPUTF8 needed
        config = config_for(make_config, seeds, port, readers={"ana": []})
        config.write_text(config.read_text().replace("ana@example.org", "ana@exämple.org"))
        report = run(config)
    assert report.ok, report.to_json()
    assert [rcpts for rcpts, _ in recorder.messages] == [["ana@xn--exmple-cua.org"]]


@pytest.mark.parametrize(
    ("table", "key", "value"),
    [
        ("subscribers", "email", "jürgen@@example.org"),
        ("subscribers", "email", "bob@example"),
        ("email", "from", "Paper Digest <digest@>"),
        ("email", "envelope_from", "bounces at example.org"),
    ],
)
def test_a_bad_address_is_refused_when_the_config_is_read(make_config, table, key, value):
    config = make_config(extra=smtp_settings(25))
    text = config.read_text()
    if table == "subscribers":
        text = text.replace('email = "all@example.org"', f'email = "{value}"')
    else:
        text = text.replace('from = "Paper Digest <digest@lab.example.org>"\n', "")
        text = text.replace("[email]\n", f'[email]\n{key} = "{value}"\n')
    config.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    [line] = [n for n, line in enumerate(text.splitlines(), 1) if value in line]
    where = "subscribers[0].email" if table == "subscribers" else f"email.{key}"
    assert f"{config.resolve()}:{line}: {where}: expected " in str(caught.value)
    assert repr(value) in str(caught.value)
