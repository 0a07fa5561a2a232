"""The email channel under faults, against real SMTP servers on loopback (aiosmtpd).

Counts are what the servers received: a reader gets one copy, or, when the server took a
message and never confirmed it, at most two (the one resend of a later run, recognisably
the same message by its Message-ID).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socketserver
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import date, datetime
from pathlib import Path

import pytest
from test_smtp_delivery import READERS, cli, parse, run, smtp_settings, subscribers

from conftest import LoopbackSmtp, SmtpRecorder, bound_socket
from digest.config import load_config
from digest.errors import ConfigError
from digest.pipeline import run_once
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
    """A real SMTP server with ``handler`` on loopback, on ``port`` (a server that comes
    back) or on one the kernel picks."""
    controller = LoopbackSmtp(handler, bound_socket(port or 0), **options)
    controller.start()
    try:
        yield controller.port
    finally:
        controller.stop()


class _Loopback(socketserver.ThreadingTCPServer):
    """A TCP server on loopback whose handler misbehaves; ``released`` ends its waits."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, handler: type[socketserver.BaseRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.released = threading.Event()
        self.connections = 0
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server_address[1]

    def close(self) -> None:
        self.released.set()
        self.shutdown()
        self.server_close()


@contextmanager
def loopback(handler: type[socketserver.BaseRequestHandler]) -> Iterator[_Loopback]:
    server = _Loopback(handler)
    try:
        yield server
    finally:
        server.close()


def config_for(make_config, seeds, port: int, readers=READERS, **email: object) -> Path:
    config = make_config(subscribers=subscribers(readers), extra=smtp_settings(port, **email))
    for capture in seeds:
        shutil.copy(capture, config.parent / "inbox" / capture.name)
    return config


def copies(recorder: SmtpRecorder, addresses=ADDRESSES) -> list[int]:
    return [len(recorder.for_recipient(address)) for address in addresses]


def email_statuses(config: Path, readers=READERS) -> dict[str, str]:
    """Each reader's email delivery status in the store (one digest each here)."""
    with Store.open(config.parent / "state" / "digest.db") as store:
        unfinished = {name: store.pending_deliveries(name) for name in readers}
    return {
        name: {d.channel: d.status for d in found}.get("email", "done")
        for name, found in unfinished.items()
    }


def run_on(config: Path, day: str, http):
    """A run on ``day`` through the given HTTP layer."""
    moment = datetime.fromisoformat(f"{day}T12:00:00+00:00")
    return run_once(
        load_config(config), today=date.fromisoformat(day), clock=lambda: moment, http=http
    )


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


class _SmtpRefusingTheFirstData(socketserver.StreamRequestHandler):
    """A plain SMTP server that answers the first DATA command 451 (before any message was
    sent, the 354 stage aiosmtpd cannot fault) and takes every later message."""

    def handle(self) -> None:
        server = self.server
        self.wfile.write(b"220 127.0.0.1 ESMTP\r\n")
        recipients: list[bytes] = []
        for line in self.rfile:
            verb = line[:4].upper()
            if verb == b"EHLO":
                self.wfile.write(b"250-127.0.0.1\r\n250 8BITMIME\r\n")
            elif verb == b"RCPT":
                recipients.append(line.split(b"<", 1)[1].split(b">", 1)[0])
                self.wfile.write(b"250 OK\r\n")
            elif verb == b"DATA" and not server.refused:
                server.refused = True
                self.wfile.write(b"451 4.3.0 Not now\r\n")
            elif verb == b"DATA":
                self.wfile.write(b"354 Go ahead\r\n")
                body = b"".join(iter(self.rfile.readline, b".\r\n"))
                server.messages.append((list(recipients), body))
                recipients.clear()
                self.wfile.write(b"250 2.0.0 Queued\r\n")
            elif verb == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:  # MAIL, RSET, NOOP
                if verb == b"RSET":
                    recipients.clear()
                self.wfile.write(b"250 OK\r\n")


def test_a_temporary_refusal_of_the_data_command_is_retried_in_the_run(make_config, seeds):
    with loopback(_SmtpRefusingTheFirstData) as server:
        server.refused, server.messages = False, []
        report = run(config_for(make_config, seeds, server.port))
    assert report.ok, report.to_json()
    received = [rcpts[0].decode() for rcpts, _ in server.messages]
    assert sorted(received) == ADDRESSES  # one copy each, alice's on the second attempt


def test_the_store_resends_an_unknown_delivery_once_then_never(store_target):
    from test_store import D0, NOW, digest_of, paper

    with Store.open(store_target) as store:
        uids = store.upsert_papers([paper("A Paper", "2601.00001")], D0, NOW).uids
        made = digest_of(store, "alice", D0, uids, uids, channels=("email", "feed"))
        assert store.mark_unknown(made.digest_id, "email", "no answer") == "unknown"
        [again] = store.pending_deliveries("alice")[:1]
        assert (again.channel, again.status) == ("email", "unknown")
        store.mark_failed(made.digest_id, "email", "451 try later")  # the resend, refused
        assert store.mark_unknown(made.digest_id, "email", "no answer") == "unconfirmed"
        assert [d.channel for d in store.pending_deliveries("alice")] == ["feed"]
        [summary] = store.summary().subscribers
        assert (summary.unknown_deliveries, summary.unconfirmed_deliveries) == (0, 1)
        assert summary.pending_deliveries == 1


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


# --- slow failure: a run's failure budget per mail server and per listing host ----------


class _SmtpThatHangsAtMail(socketserver.StreamRequestHandler):
    """Greets, answers EHLO, then never answers MAIL FROM."""

    def handle(self) -> None:
        self.server.connections += 1
        self.wfile.write(b"220 127.0.0.1 ESMTP hung\r\n")
        for line in self.rfile:
            if line[:4].upper() in (b"EHLO", b"HELO"):
                self.wfile.write(b"250-127.0.0.1\r\n250 8BITMIME\r\n")
            elif line[:4].upper() == b"QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.server.released.wait(30)
                return


class _HttpThatNeverAnswers(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.server.connections += 1
        self.request.recv(65536)
        self.server.released.wait(30)


def test_a_hung_mail_server_costs_a_run_its_failure_budget_not_a_timeout_per_reader(
    make_config, seeds
):
    readers = {f"reader{i}": [] for i in range(1, 6)}
    addresses = [f"{name}@example.org" for name in readers]
    with loopback(_SmtpThatHangsAtMail) as server:
        config = config_for(
            make_config,
            seeds,
            server.port,
            readers=readers,
            timeout=0.5,
            retries=3,
            retry_backoff=0.05,
            failure_budget_seconds=1.2,
        )
        started = time.monotonic()
        report = run(config)
        took = time.monotonic() - started
        port = server.port
    # Without the budget: 5 readers x 4 attempts x 0.5 s = 10 s of timeouts.
    assert took < 6, took
    assert server.connections <= 4
    [line] = report.gave_up()
    assert line.startswith(f"email: gave up on 127.0.0.1:{port} after ")
    assert line.endswith(
        "s of failures ([email] failure_budget_seconds = 1.2); 5 digests left pending"
    )
    for name in readers:
        statuses = {d.channel: d.status for d in report.subscribers[name].deliveries}
        assert statuses == {"email": "pending", "page": "delivered"}, name
        assert report.subscribers[name].delivered == 0
    assert email_statuses(config, readers) == dict.fromkeys(readers, "pending")

    recorder = SmtpRecorder()
    with serve(recorder, port):  # a good server: every pending digest goes out, once
        later = run(config, 1)
    assert later.ok, later.to_json()
    assert copies(recorder, addresses) == [1] * 5
    assert email_statuses(config, readers) == dict.fromkeys(readers, "done")


def test_a_hung_host_costs_a_run_its_failure_budget_and_its_days_are_read_next_run(
    make_config, fixtures_dir, seeds
):
    from pytest_httpserver import HTTPServer
    from test_live_sources import HF_0612, hf_source, serve_hf_days

    from digest.config import HttpSettings
    from digest.http import Http

    with loopback(_HttpThatNeverAnswers) as server:
        port = server.port
        sources = hf_source(f"http://127.0.0.1:{port}", recheck_days=14) + (
            '\n[[sources]]\nname = "inbox"\nkind = "file"\npath = "inbox/*"\n'
        )
        config = make_config(sources=sources)
        shutil.copy(seeds[2], config.parent / "inbox" / "capture.txt")
        settings = HttpSettings(timeout=0.3, retries=2, backoff=0.05, failure_budget_seconds=1)
        started = time.monotonic()
        with closing(Http(settings)) as http:
            report = run_on(config, "2026-06-12", http)
        took = time.monotonic() - started
    # Without the budget: 15 days x 3 attempts x 0.3 s = 13.5 s of timeouts.
    assert took < 5, took
    assert server.connections <= 5
    [line] = report.gave_up()
    assert line.startswith(f"http: gave up on 127.0.0.1:{port} after ")
    assert re.search(r" s of failures; \d+ requests not made$", line), line
    assert "not requested: gave up on" in report.sources["hf"].error
    assert report.sources["inbox"].new == 38 and report.subscribers["all"].delivered == 38
    assert not report.ok

    good = HTTPServer(port=port)
    good.start()
    try:
        serve_hf_days(good, {"2026-06-12": (fixtures_dir / HF_0612).read_bytes()})
        with closing(Http(HttpSettings(timeout=5, retries=0))) as http:
            later = run_on(config, "2026-06-12", http)
    finally:
        good.stop()
    assert later.ok, later.to_json()
    assert later.sources["hf"].new > 0
    assert later.subscribers["all"].delivered == later.sources["hf"].new
