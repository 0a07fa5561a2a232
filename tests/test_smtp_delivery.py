"""Email over SMTP against a real server (aiosmtpd) on loopback, read back with `email`."""

from __future__ import annotations

import email
import email.policy
import json
import os
import shutil
import signal
import subprocess
import sys
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from conftest import LoopbackSmtp, bound_socket, day
from digest.config import load_config
from digest.pipeline import run_once

READERS = {
    "alice": ["linear attention", "mamba"],
    "bob": ["diffusion", "video generation"],
    "carol": ["code generation", "program synthesis"],
}


def subscribers(readers: dict[str, list[str]] = READERS) -> str:
    return "".join(
        f'\n[[subscribers]]\nname = "{name}"\nemail = "{name}@example.org"\n'
        f'keywords = {json.dumps(keywords)}\nchannels = ["email", "page"]\n'
        for name, keywords in readers.items()
    )


def smtp_settings(port: int, **extra: object) -> str:
    values = {
        "from": "Paper Digest <digest@lab.example.org>",
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "retries": 2,
        "retry_backoff": 0.01,
        "timeout": 5,
    } | extra
    body = "\n".join(f"{key} = {json.dumps(value)}" for key, value in values.items())
    return f"\n[email]\n{body}\n"


@pytest.fixture
def smtp_config(make_config, seeds, smtp_server):
    _recorder, port = smtp_server

    def make(readers: dict[str, list[str]] = READERS, **extra: object) -> Path:
        config = make_config(subscribers=subscribers(readers), extra=smtp_settings(port, **extra))
        inbox = config.parent / "inbox"
        for capture in seeds:
            shutil.copy(capture, inbox / capture.name)
        return config

    return make


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "digest", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def parse(content: bytes) -> EmailMessage:
    return email.message_from_bytes(content, policy=email.policy.default)


def run(config: Path, n: int = 0):
    clock = lambda: datetime(2026, 3, 13, 7, 30, tzinfo=UTC)  # noqa: E731
    return run_once(load_config(config), today=day(n), clock=clock)


def test_each_subscriber_gets_one_complete_message_and_a_rerun_sends_nothing(
    smtp_config, smtp_server
):
    recorder, _ = smtp_server
    config = smtp_config()
    report = run(config)
    assert report.ok, report.to_json()
    assert recorder.sessions == 1  # one connection for all subscribers
    for name in READERS:
        received = recorder.for_recipient(f"{name}@example.org")
        assert len(received) == 1, name
        message = parse(received[0])
        assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
        assert message["From"] == "Paper Digest <digest@lab.example.org>"
        assert message["To"] == f"{name}@example.org"
        assert message["Subject"].startswith("Paper digest for 2026-03-13: ")
        assert message["Date"] == "Fri, 13 Mar 2026 07:30:00 +0000"
        assert message["Message-ID"].startswith("<digest.2026-03-13.") and message[
            "Message-ID"
        ].endswith("@lab.example.org>")
        assert message["List-Id"] == "Paper digest <paper-digest.lab.example.org>"
        # Without signed links (no [web] secret), the mailto alone, naming nobody.
        assert message["List-Unsubscribe"] == (
            "<mailto:digest@lab.example.org?subject=unsubscribe>"
        )
        assert message["List-Unsubscribe-Post"] is None
        html = message.get_body(("html",)).get_content()
        text = message.get_body(("plain",)).get_content()
        chosen = report.subscribers[name].papers
        assert chosen, name
        for paper in chosen:
            assert " ".join(paper["title"].split()[:6]) in " ".join(text.split())
        assert html.count('class="paper"') == len(chosen)
        assert f"{name}@example.org via 127.0.0.1:" in report.subscribers[name].deliveries[0].detail

    again = run(config)
    assert again.ok and len(recorder.messages) == 3
    assert all(s.deliveries == [] for s in again.subscribers.values())


def test_deterministic_message_id_per_subscriber_and_day(smtp_config, smtp_server):
    recorder, _ = smtp_server
    run(smtp_config())
    ids = {parse(content)["Message-ID"] for _, content in recorder.messages}
    assert len(ids) == 3


@pytest.mark.parametrize(
    "reply", ["421 4.7.0 Try again later", "451 4.3.0 Temporary local problem"]
)
def test_a_temporary_refusal_is_retried_and_delivered_once(smtp_config, smtp_server, reply):
    recorder, _ = smtp_server
    recorder.data_replies = [reply]
    report = run(smtp_config())
    assert report.ok
    assert [len(recorder.for_recipient(f"{n}@example.org")) for n in READERS] == [1, 1, 1]


def test_temporary_refusals_past_the_retries_stay_pending(smtp_config, smtp_server):
    recorder, _ = smtp_server
    recorder.rcpt_replies["alice@example.org"] = ["450 4.2.1 Mailbox busy"] * 3
    config = smtp_config()
    report = run(config)
    assert not report.ok
    assert "450 4.2.1 Mailbox busy (temporary; tried 3 times)" in report.subscribers["alice"].error
    assert recorder.for_recipient("alice@example.org") == []
    later = run(config, 1)
    assert later.ok and len(recorder.for_recipient("alice@example.org")) == 1


def test_a_permanent_refusal_fails_only_that_subscriber_and_is_retried_next_run(
    smtp_config, smtp_server
):
    recorder, _ = smtp_server
    recorder.rcpt_replies["bob@example.org"] = [
        "550 5.1.1 <bob@example.org>: Recipient address rejected"
    ]
    config = smtp_config()
    result = cli("run", "--config", str(config), "--date", "2026-03-13", "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    bob = report["subscribers"]["bob"]
    assert (
        "refused the recipient bob@example.org: 550 5.1.1 <bob@example.org>: Recipient address rejected"
        in bob["error"]
    )
    assert bob["delivered"] == 0
    assert {d["channel"]: d["status"] for d in bob["deliveries"]} == {
        "email": "failed",
        "page": "delivered",
    }
    assert recorder.for_recipient("alice@example.org") and recorder.for_recipient(
        "carol@example.org"
    )
    assert recorder.for_recipient("bob@example.org") == []

    second = cli("run", "--config", str(config), "--date", "2026-03-13", "--json")
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)
    sent = {
        name: [d["channel"] for d in sub["deliveries"]]
        for name, sub in report["subscribers"].items()
    }
    assert sent == {"alice": [], "bob": ["email"], "carol": []}
    assert [len(recorder.for_recipient(f"{n}@example.org")) for n in READERS] == [1, 1, 1]


def test_a_connection_dropped_after_the_message_is_sent_once_more_by_the_next_run(
    smtp_config, smtp_server
):
    recorder, _ = smtp_server
    recorder.drop_data = 1  # the whole message went out; the server hangs up without a word
    config = smtp_config()
    report = run(config)
    assert not report.ok
    assert [d.status for d in report.subscribers["alice"].deliveries] == ["unknown", "delivered"]
    assert [len(recorder.for_recipient(f"{n}@example.org")) for n in READERS] == [0, 1, 1]
    assert recorder.sessions == 2  # reconnected once, for the next reader; alice not retried
    later = run(config, 1)
    assert later.ok, later.to_json()
    assert [len(recorder.for_recipient(f"{n}@example.org")) for n in READERS] == [1, 1, 1]


def test_no_server_at_all_keeps_every_email_pending_and_other_channels_deliver(make_config, seeds):
    held = bound_socket(listening=False)  # bound, so refused until the server takes it
    port = held.getsockname()[1]
    config = make_config(subscribers=subscribers(), extra=smtp_settings(port, retries=1))
    shutil.copy(seeds[2], config.parent / "inbox" / "capture.txt")
    report = run(config)
    assert not report.ok
    for name in READERS:
        entry = report.subscribers[name]
        assert f"cannot reach the mail server 127.0.0.1:{port}" in entry.error
        assert {d.channel: d.status for d in entry.deliveries} == {
            "email": "failed",
            "page": "delivered",
        }
        assert entry.delivered == 0
    # The server comes back: the next run sends every pending digest, once.
    from conftest import SmtpRecorder

    recorder = SmtpRecorder()
    controller = LoopbackSmtp(recorder, held)
    controller.start()
    try:
        later = run(config, 1)
    finally:
        controller.stop()
    assert later.ok
    assert sorted(rcpts[0] for rcpts, _ in recorder.messages) == [
        f"{n}@example.org" for n in sorted(READERS)
    ]


def test_dry_run_never_sends(smtp_config, smtp_server):
    recorder, _ = smtp_server
    config = smtp_config()
    report = run_once(
        load_config(config),
        today=day(0),
        dry_run=True,
        clock=lambda: datetime(2026, 3, 13, tzinfo=UTC),
    )
    assert report.ok and recorder.messages == [] and recorder.sessions == 0
    assert sorted(
        p.parent.name for p in (config.parent / "out" / "email").rglob("*.eml")
    ) == sorted(READERS)


def test_login_uses_the_password_from_the_environment_and_never_shows_it(
    make_config, seeds, monkeypatch, caplog
):
    from aiosmtpd.smtp import AuthResult

    from conftest import SmtpRecorder

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"digest" and auth_data.password == b"s3cret-pa55"
        return AuthResult(success=ok, handled=False)

    recorder = SmtpRecorder()
    controller = LoopbackSmtp(
        recorder,
        authenticator=authenticator,
        auth_require_tls=False,
    )
    port = controller.port
    controller.start()
    try:
        monkeypatch.setenv("TEST_SMTP_PASSWORD", "s3cret-pa55")
        config = make_config(
            subscribers=subscribers({"alice": []}),
            extra=smtp_settings(port, username="digest", password_env="TEST_SMTP_PASSWORD"),
        )
        shutil.copy(seeds[2], config.parent / "inbox" / "capture.txt")
        report = run(config)
        assert report.ok and len(recorder.messages) == 1

        monkeypatch.setenv("TEST_SMTP_PASSWORD", "wrong-password")
        bad = run(config, 1)  # nothing new for alice, but the test digest below needs a login
        from digest.previews import send_test

        with pytest.raises(Exception, match="refused the login of digest: 535") as caught:
            send_test(load_config(config), "alice@example.org")
        assert bad.ok
        monkeypatch.delenv("TEST_SMTP_PASSWORD")
        with pytest.raises(Exception, match="TEST_SMTP_PASSWORD is not set"):
            send_test(load_config(config), "alice@example.org")
    finally:
        controller.stop()
    everything = caplog.text + str(caught.value) + json.dumps(report.to_json())
    assert "s3cret-pa55" not in everything and "wrong-password" not in everything


def test_starttls_and_implicit_tls_with_a_private_ca(make_config, seeds, tmp_path):
    trustme = pytest.importorskip("trustme")
    import ssl

    from conftest import SmtpRecorder

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))

    shutil.copy(seeds[2], tmp_path / "capture.txt")
    for security, kwargs in (
        ("starttls", {"tls_context": server_context, "require_starttls": True}),
        ("tls", {"ssl_context": server_context}),
    ):
        recorder = SmtpRecorder()
        controller = LoopbackSmtp(recorder, **kwargs)
        port = controller.port
        controller.start()
        try:
            folder = tmp_path / security
            folder.mkdir()
            config = make_config(
                subscribers=subscribers({"alice": []}),
                extra=smtp_settings(port, security=security, ca_file=str(ca_file)),
                folder=folder,
            )
            shutil.copy(tmp_path / "capture.txt", folder / "inbox" / "capture.txt")
            report = run(config)
            assert report.ok, report.to_json()
            assert len(recorder.messages) == 1, security
        finally:
            controller.stop()

    # Without the private CA the certificate is not trusted: a clear TLS error.
    recorder = SmtpRecorder()
    controller = LoopbackSmtp(recorder, tls_context=server_context, require_starttls=True)
    port = controller.port
    controller.start()
    try:
        folder = tmp_path / "untrusted"
        folder.mkdir()
        config = make_config(
            subscribers=subscribers({"alice": []}),
            extra=smtp_settings(port, security="starttls"),
            folder=folder,
        )
        shutil.copy(tmp_path / "capture.txt", folder / "inbox" / "capture.txt")
        report = run(config)
        assert "TLS with 127.0.0.1:" in report.subscribers["alice"].error
        assert "CERTIFICATE_VERIFY_FAILED" in report.subscribers["alice"].error
    finally:
        controller.stop()


def test_send_test_sends_one_sample_digest(smtp_config, smtp_server):
    recorder, _ = smtp_server
    result = cli("send-test", "--config", str(smtp_config()), "--to", "me@example.org")
    assert result.returncode == 0, result.stderr
    assert "sample digest sent: me@example.org via 127.0.0.1:" in result.stdout
    [(rcpts, content)] = recorder.messages
    assert rcpts == ["me@example.org"]
    message = parse(content)
    assert "Déjà Vu" in message.get_body(("html",)).get_content()
    bad = cli("send-test", "--config", str(smtp_config()), "--to", "not an address")
    assert bad.returncode == 2 and "--to: expected one email address" in bad.stderr


def test_maildir_transport_files_one_message_per_digest(make_config, seeds):
    config = make_config(
        subscribers=subscribers(), extra='\n[email]\ntransport = "maildir"\nmaildir = "Mail"\n'
    )
    shutil.copy(seeds[2], config.parent / "inbox" / "capture.txt")
    report = run(config)
    assert report.ok
    import mailbox

    box = mailbox.Maildir(config.parent / "Mail", create=False)
    recipients = sorted(message["To"] for message in box)
    assert recipients == [f"{n}@example.org" for n in sorted(READERS)]


# --- crash safety: the sending process is SIGKILLed mid-run --------------------------------

CRASH_READERS = {f"reader{i}": [] for i in range(1, 6)}


def test_killed_while_sending_nobody_gets_more_than_the_one_message_in_flight(
    smtp_config, smtp_server
):
    recorder, _ = smtp_server
    config = smtp_config(CRASH_READERS)
    child: dict[str, subprocess.Popen[str]] = {}

    def kill_on_second(count: int) -> None:
        if count == 2:  # the server has the 2nd message; its sender dies before hearing 250
            os.kill(child["p"].pid, signal.SIGKILL)

    recorder.on_message = kill_on_second
    command = [
        sys.executable,
        "-m",
        "digest",
        "run",
        "--config",
        str(config),
        "--date",
        "2026-03-13",
    ]
    child["p"] = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    child["p"].communicate(timeout=120)
    assert child["p"].returncode == -signal.SIGKILL
    assert len(recorder.messages) == 2
    recorder.on_message = None

    again = subprocess.run([*command, "--json"], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    counts = {name: len(recorder.for_recipient(f"{name}@example.org")) for name in CRASH_READERS}
    assert all(n >= 1 for n in counts.values()), counts  # everyone got their digest
    twice = [name for name, n in counts.items() if n > 1]
    assert twice == ["reader2"]  # only the message that was in flight came again
    first, second = recorder.for_recipient("reader2@example.org")
    assert parse(first)["Message-ID"] == parse(second)["Message-ID"]  # recognisably the same digest


def test_a_huge_digest_stays_under_the_clipping_limit_over_smtp(smtp_config, smtp_server):
    recorder, _ = smtp_server
    config = smtp_config({"everything": []})
    text = config.read_text().replace(
        "[output]\n", '[output]\nbase_url = "https://lab.example.org/digest"\n'
    )
    config.write_text(text.replace("keywords = []", "keywords = []\nmax_papers = 1000"))
    # Five days of captures in one digest: far over what one email can hold.
    report = run(config)
    assert report.subscribers["everything"].selected == 226
    messages = [parse(raw) for _rcpts, raw in recorder.messages]
    assert len(messages) > 1  # sent as several emails, each under the limit
    shown = 0
    for message in messages:
        html = message.get_body(("html",)).get_content()
        assert len(html.encode()) < 102_000
        assert "did not fit" not in html
        shown += html.count('class="paper"')
    assert shown == 226


def test_headers_stay_single_line_and_valid_for_hostile_titles(make_config, smtp_server):
    recorder, port = smtp_server
    titles = [
        "Line one\r\nBcc: everyone@example.org\r\n\r\nbody injection",
        "=?utf-8?q?=0A?= encoded-word smuggling =?utf-8?b?DQo=?=",
        "A " + "very long title " * 125,  # 2,000 characters
        "Right-to-left \u202ekcatta\u202c text",
        "Emoji 🚀🧠🔥 in the title",
    ]
    config = make_config(
        subscribers=subscribers({"alice": []}),
        extra=smtp_settings(port, subject="{count} new papers for {subscriber} on {date}"),
    )
    items = [
        {"paper": {"id": f"2603.0{i}123", "title": t, "summary": "An abstract."}}
        for i, t in enumerate(titles, 1)
    ]
    (config.parent / "inbox" / "daily.json").write_text(json.dumps(items), encoding="utf-8")
    report = run(config)
    assert report.ok, report.to_json()
    [(rcpts, raw)] = recorder.messages
    assert rcpts == ["alice@example.org"]
    head = raw.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[0]
    for line in head.splitlines():
        assert len(line) <= 998
        assert not line.lower().startswith(b"bcc:")
    message = email.message_from_bytes(raw, policy=email.policy.strict)
    assert message["Subject"] == "5 new papers for alice on 2026-03-13"
    for name, value in message.items():
        assert not getattr(value, "defects", ()), (name, value.defects)
        for marker in ("Bcc", "smuggling", "kcatta", "🚀", "very long title"):
            assert marker not in str(value), (name, value)
    html = message.get_body(("html",)).get_content()
    assert "very long title very long title" in html and "🚀🧠🔥" in html
