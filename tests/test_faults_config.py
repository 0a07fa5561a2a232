"""Faults around the config and the files a run leaves: secrets kept out of every output,
private file modes, a Maildir a mail client reads, and `digest check` catching what would
fail at run time. Each runs the real command in a subprocess."""

from __future__ import annotations

import email
import email.policy
import mailbox
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ONE_READER = """
[[subscribers]]
name = "ann"
email = "ann@example.org"
keywords = []
max_papers = 1000
channels = ["email"]
"""


def digest(
    *args: str, env: dict[str, str] | None = None, unset: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """Run the command with this environment, plus ``env``, minus the variables ``unset``."""
    environment = {k: v for k, v in os.environ.items() if k not in unset} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "digest", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
    )


def with_capture(config: Path, seeds: list[Path]) -> Path:
    shutil.copy(seeds[2], config.parent / "inbox" / "capture.txt")
    return config


# --- Maildir ---------------------------------------------------------------------------------


def test_maildir_is_created_under_missing_folders_with_lf_line_endings(make_config, seeds):
    extra = '\n[email]\ntransport = "maildir"\nmaildir = "out/mail/Maildir"\n'
    config = with_capture(make_config(subscribers=ONE_READER, extra=extra), seeds)
    assert not (config.parent / "out").exists()
    result = digest("run", "--config", str(config), "--date", "2026-03-13")
    assert result.returncode == 0, result.stderr
    box = mailbox.Maildir(config.parent / "out" / "mail" / "Maildir", create=False)
    files = list((config.parent / "out" / "mail" / "Maildir" / "new").iterdir())
    assert len(files) == 1 and len(box) == 1
    raw = files[0].read_bytes()
    assert b"\r" not in raw
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["To"] == "ann@example.org"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    assert "\r" not in text and text.count("\n") > 38
    html = message.get_body(("html",)).get_content()
    assert html.count('class="paper"') == 38


# --- file modes ------------------------------------------------------------------------------

RSS_FIXTURE = "arxiv_rss/rss_cs.CL_2026-04-27_3_items_reserialized_distill.xml"
ALL_CHANNELS = ONE_READER.replace('["email"]', '["email", "feed", "page", "markdown"]')


def modes_under(folder: Path, skip: set[Path]) -> dict[str, int]:
    """The permission bits of every file and folder under ``folder``, but those in skip."""
    found = {}
    for path in folder.rglob("*"):
        if not any(path == s or s in path.parents for s in skip):
            found[str(path.relative_to(folder))] = path.lstat().st_mode & 0o777
    return found


@pytest.fixture
def rss_while_running(httpserver, fixtures_dir, tmp_path):
    """An arXiv RSS server that notes the modes of every file while a run is under way.

    By the time the run asks for the feed it holds the store open (database, WAL and
    shared memory), its lock and the arXiv throttle file.
    """
    from werkzeug import Response

    feed = (fixtures_dir / RSS_FIXTURE).read_bytes()
    seen: list[dict[str, int]] = []

    def respond(_request):
        seen.append(modes_under(tmp_path, {tmp_path / "config.toml", tmp_path / "inbox"}))
        return Response(feed, content_type="application/rss+xml")

    httpserver.expect_request("/rss/cs.CL").respond_with_handler(respond)
    source = f"""
[[sources]]
name = "rss"
kind = "arxiv_rss"
categories = ["cs.CL"]
base_url = "{httpserver.url_for("").rstrip("/")}"
"""
    return source, seen


def run_with_every_output(make_config, seeds, source: str, extra: str = "") -> Path:
    files = '\n[[sources]]\nname = "inbox"\nkind = "file"\npath = "inbox/*"\n'
    config = make_config(subscribers=ALL_CHANNELS, sources=files + source, extra=extra)
    with_capture(config, seeds)
    result = digest("run", "--config", str(config), "--date", "2026-04-27")
    assert result.returncode == 0, result.stderr
    return config


def test_store_lock_and_outputs_are_private_by_default(make_config, seeds, rss_while_running):
    source, seen = rss_while_running
    config = run_with_every_output(make_config, seeds, source)
    # The Maildir transport, into a store of its own.
    maildir = config.with_name("maildir.toml")
    maildir.write_text(
        config.read_text()
        .replace("[output]", '[email]\ntransport = "maildir"\n[output]')
        .replace("state/digest.db", "maildir-state/digest.db")
    )
    result = digest("run", "--config", str(maildir), "--date", "2026-04-27")
    assert result.returncode == 0, result.stderr
    after = modes_under(config.parent, {config, maildir, config.parent / "inbox"})
    [during] = seen[:1]
    for name in ("digest.db", "digest.db-wal", "digest.db-shm", "digest.db.lock"):
        assert during[f"state/{name}"] == 0o600, name
    assert during["state/digest.db.arxiv-throttle"] == 0o600
    for expected in (
        "out/email/ann/2026-04-27.eml",
        "out/feeds/ann.rss",
        "out/feeds/ann.atom",
        "out/pages/ann/2026-04-27.html",
        "out/pages/ann/index.html",
        "out/markdown/ann/2026-04-27.md",
        "out/Maildir/new",
    ):
        assert expected in after, expected
    assert len([p for p in after if p.startswith("out/Maildir/new/")]) == 1
    for path, mode in {**during, **after}.items():
        is_dir = (config.parent / path).is_dir()
        assert mode == (0o700 if is_dir else 0o600), f"{path} is {mode:o}"


def test_output_umask_opens_the_outputs_and_keeps_the_store_private(
    make_config, seeds, rss_while_running
):
    source, seen = rss_while_running
    config = run_with_every_output(make_config, seeds, source, extra='umask = "022"\n')
    assert 'umask = "022"' in config.read_text().split("[output]")[1].split("[")[0]
    after = modes_under(config.parent, {config, config.parent / "inbox"})
    assert after["out"] == 0o755 and after["out/feeds"] == 0o755
    assert after["out/feeds/ann.rss"] == 0o644
    assert after["out/email/ann/2026-04-27.eml"] == 0o644
    assert after["state/digest.db"] == 0o600
    assert seen[0]["state/digest.db-wal"] == 0o600 and after["state/digest.db.lock"] == 0o600


# --- secrets -----------------------------------------------------------------------------------

PASTED = "correct horse: battery staple!"  # a password where its variable's name belongs
HF_TOKEN = "hf_QxTrZmWkLpVnBsYdGhJfCeRaUoIt83520"


def store_bytes(config: Path) -> bytes:
    """Every byte the store keeps on disk, its WAL included."""
    state = config.parent / "state"
    return (
        b"".join(p.read_bytes() for p in sorted(state.glob("digest.db*")))
        if state.exists()
        else b""
    )


def assert_nowhere(secret: str, config: Path, *results: subprocess.CompletedProcess[str]) -> None:
    for result in results:
        assert secret not in result.stdout and secret not in result.stderr
    assert secret.encode() not in store_bytes(config)


SMTP = '\n[email]\nhost = "127.0.0.1"\nport = 2525\nsecurity = "none"\nusername = "digest"\n'


@pytest.mark.parametrize(
    ("extra", "sources", "key", "secret"),
    [
        (SMTP + f'password_env = "{PASTED}"\n', "", "email.password_env", PASTED),
        (
            SMTP + 'password_env = "Xk9fQ2mZ7vL4pR8sT1wN"\n',
            "",
            "email.password_env",
            "Xk9fQ2mZ7vL4pR8sT1wN",
        ),
        (
            "",
            f'\n[[sources]]\nname = "hf"\nkind = "hf_daily"\ntoken_env = "{HF_TOKEN}"\n',
            "sources[1].token_env",
            HF_TOKEN,
        ),
        (
            '\n[store]\nurl_env = "postgresql://digest:Sup3r-Secret@db/digest"\n',
            "",
            "store.url_env",
            "Sup3r-Secret",
        ),
    ],
    ids=["password-with-spaces", "random-password", "hf-token", "database-url"],
)
def test_a_secret_pasted_for_a_variable_name_is_refused_without_being_shown(
    make_config, seeds, extra, sources, key, secret
):
    files = '\n[[sources]]\nname = "inbox"\nkind = "file"\npath = "inbox/*"\n'
    config = make_config(subscribers=ONE_READER, sources=files + sources, extra="")
    text = config.read_text()
    if extra.startswith("\n[store]"):
        text = text.replace('[store]\npath = "state/digest.db"', extra.strip())
    else:
        text = extra + text
    config.write_text(text)
    with_capture(config, seeds)
    results = [
        digest("check", "--config", str(config)),
        digest("run", "--config", str(config), "--json"),
        digest("-v", "run", "--config", str(config)),
    ]
    for result in results:
        assert result.returncode == 2, result.stderr
        assert f"{key}: holds something that is not a variable name; put the " in result.stderr
        assert "environment and the variable's name here" in result.stderr
        assert f"{config}:" in result.stderr
    assert_nowhere(secret, config, *results)
    assert not (config.parent / "state").exists()  # nothing ran


@pytest.mark.parametrize("token", ["short-Secret-1", "a-long-Secret-token-with/slash"])
def test_a_bad_feed_token_is_refused_without_being_shown(make_config, seeds, token):
    reader = ONE_READER + f'feed_token = "{token}"\n'
    config = with_capture(make_config(subscribers=reader), seeds)
    results = [digest("check", "--config", str(config)), digest("run", "--config", str(config))]
    for result in results:
        assert result.returncode == 2
        assert "subscribers[0].feed_token: expected 16 or more letters" in result.stderr
    assert_nowhere(token, config, *results)


class EchoingRelay:
    """An SMTP relay that accepts the login, then refuses each message quoting it back."""

    def __init__(self) -> None:
        self.logins: list[bytes] = []
        self.refused = 0

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        from aiosmtpd.smtp import AuthResult

        self.logins.append(auth_data.password)
        return AuthResult(success=True, handled=False)

    async def handle_DATA(self, server, session, envelope):
        self.refused += 1
        password = self.logins[-1].decode()
        return f"550 5.7.1 sender digest:{password} is not allowed to relay"


@pytest.fixture
def echoing_relay():
    from conftest import LoopbackSmtp

    relay = EchoingRelay()
    controller = LoopbackSmtp(
        relay,
        authenticator=relay.authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield relay, controller.port
    finally:
        controller.stop()


def test_a_secret_echoed_by_a_server_is_redacted_from_reports_logs_and_the_store(
    make_config, seeds, echoing_relay
):
    import json
    import sqlite3

    relay, port = echoing_relay
    password, token = "Tr0ub4dor&3-relay-pass", "k3U9-long-random-string-Qz"
    readers = ONE_READER + f'feed_token = "{token}"\n'
    smtp = (
        f'\n[email]\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\nretries = 0\n'
        'username = "digest"\npassword_env = "TEST_RELAY_PASSWORD"\n'
    )
    config = with_capture(make_config(subscribers=readers, extra=smtp), seeds)
    env = {"TEST_RELAY_PASSWORD": password}
    as_json = digest("run", "--config", str(config), "--json", "--date", "2026-03-13", env=env)
    human = digest("-v", "run", "--config", str(config), "--date", "2026-03-14", env=env)
    state = digest("state", "--config", str(config), "--json", env=env)
    assert (as_json.returncode, human.returncode, state.returncode) == (1, 1, 0), human.stderr
    assert relay.logins == [password.encode()] * 2 and relay.refused == 2
    # Refused, and said so: with the server's reason, the password taken out.
    [failed] = json.loads(as_json.stdout)["subscribers"]["ann"]["deliveries"]
    assert failed["status"] == "failed"
    assert "sender digest:[redacted] is not allowed to relay" in failed["detail"]
    assert "digest:[redacted] is not allowed" in human.stdout
    assert "digest:[redacted] is not allowed" in human.stderr  # the log line
    with sqlite3.connect(config.parent / "state" / "digest.db") as db:
        errors = [row[0] for row in db.execute("SELECT last_error FROM deliveries")]
        reports = [row[0] for row in db.execute("SELECT report FROM runs")]
    assert len(errors) == 1 and "digest:[redacted] is not allowed" in errors[0]
    assert len(reports) == 2 and all("digest:[redacted]" in report for report in reports)
    for secret in (password, token):
        assert_nowhere(secret, config, as_json, human, state)


# --- digest check catches what a run would fail on -----------------------------------------------


def line_of(config: Path, needle: str) -> int:
    lines = config.read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if needle in line)


def check(config: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return digest("check", "--config", str(config), env=env)


def test_check_reports_an_unset_smtp_password_variable(make_config, seeds):
    env_name = "TEST_CHECK_SMTP_PASSWORD"
    smtp = f'\n[email]\nhost = "smtp.example.org"\nusername = "me"\npassword_env = "{env_name}"\n'
    config = with_capture(make_config(subscribers=ONE_READER, extra=smtp), seeds)
    result = digest("check", "--config", str(config), unset=(env_name,))
    assert result.returncode == 2 and "config OK" not in result.stdout
    line = line_of(config, "password_env")
    assert (
        f"error: {config}:{line}: email.password_env: the environment variable {env_name} "
        "is not set" in result.stderr
    )
    assert check(config, env={env_name: "s3cret-pass"}).returncode == 0
    # Emails as files need no login: nothing to complain about.
    files = config.read_text().replace("[email]", '[email]\ntransport = "files"')
    config.write_text(files)
    assert digest("check", "--config", str(config), unset=(env_name,)).returncode == 0


@pytest.mark.parametrize(
    ("table", "value", "expected"),
    [
        ("email", "smtp example.org", "expected a host name"),
        ("email", "smtp.example.org:587", "expected a host name without a port"),
        ("serve", "0.0.0.0 ", None),  # surrounding spaces are only trimmed
        ("serve", "local host", "expected a host name"),
    ],
)
def test_check_reports_a_host_that_is_not_one(make_config, seeds, table, value, expected):
    extra = f'\n[{table}]\nhost = "{value}"\n'
    config = with_capture(make_config(subscribers=ONE_READER, extra=extra), seeds)
    result = check(config)
    if expected is None:
        assert result.returncode == 0, result.stderr
        return
    assert result.returncode == 2 and "config OK" not in result.stdout
    line = line_of(config, "host =")
    assert f"error: {config}:{line}: {table}.host: {expected}" in result.stderr


@pytest.mark.parametrize(
    ("keyword", "message"),
    [
        ("diffusion^x", "a weight is ^ and a number at the end of the term"),
        ('"kv cache', "quotes go around the whole term"),
        ('kv "cache"', "quotes go around the whole term"),
        ("quant*ization", "a wildcard * goes only at the end"),
    ],
)
def test_check_reports_keyword_syntax_that_would_match_another_phrase(
    make_config, seeds, keyword, message
):
    reader = ONE_READER.replace("keywords = []", f"keywords = ['mamba', '{keyword}']")
    config = with_capture(make_config(subscribers=reader), seeds)
    result = check(config)
    assert result.returncode == 2 and "config OK" not in result.stdout
    line = line_of(config, "keywords =")
    assert f"error: {config}:{line}: subscribers[0].keywords[1]: " in result.stderr
    assert message in result.stderr
    run = digest("run", "--config", str(config))
    assert run.returncode == 2 and not (config.parent / "state").exists()


def test_check_points_at_the_line_of_a_bad_keyword_inside_an_interest(make_config, seeds):
    reader = ONE_READER.replace("keywords = []\n", "") + (
        '\n[[subscribers.interests]]\nname = "Video"\nkeywords = ["video"]\n'
        '\n[[subscribers.interests]]\nname = "Cache"\nexclude = ["survey"]\n'
        "keywords = ['\"kv cache']\n"
    )
    config = with_capture(make_config(subscribers=reader), seeds)
    result = check(config)
    assert result.returncode == 2
    line = line_of(config, "keywords = ['")
    assert f"error: {config}:{line}: subscribers[0].interests[1].keywords[0]: " in result.stderr


def test_check_reports_an_unset_database_url_variable(make_config, seeds):
    config = with_capture(make_config(subscribers=ONE_READER), seeds)
    config.write_text(
        config.read_text().replace("[store]\n", '[store]\nurl_env = "TEST_CHECK_DB_URL"\n')
    )
    result = digest("check", "--config", str(config), unset=("TEST_CHECK_DB_URL",))
    assert result.returncode == 2 and "config OK" not in result.stdout
    line = line_of(config, "url_env")
    assert (
        f"error: {config}:{line}: store.url_env: the environment variable TEST_CHECK_DB_URL "
        "is not set" in result.stderr
    )


def test_a_maildir_message_delivered_but_not_recorded_is_not_added_twice(make_config, seeds):
    """A run killed between the rename into the Maildir and the store's record leaves the
    delivery pending; the next run finds the message there (in new/, or in cur/ once a mail
    client has seen it) and records it without adding a copy."""
    import sqlite3

    extra = '\n[email]\ntransport = "maildir"\nmaildir = "out/Maildir"\n'
    config = with_capture(make_config(subscribers=ONE_READER, extra=extra), seeds)
    folder = config.parent / "out" / "Maildir"
    assert digest("run", "--config", str(config), "--date", "2026-03-13").returncode == 0
    (first,) = (folder / "new").iterdir()
    store = config.parent / "state" / "digest.db"

    def forget_the_record() -> None:  # what a SIGKILL after the rename leaves behind
        with sqlite3.connect(store) as conn:
            assert conn.execute("UPDATE deliveries SET status = 'pending'").rowcount == 1

    def pending() -> int:
        with sqlite3.connect(store) as conn:
            return conn.execute(
                "SELECT count(*) FROM deliveries WHERE status != 'done'"
            ).fetchone()[0]

    forget_the_record()
    result = digest("run", "--config", str(config), "--date", "2026-03-13")
    assert result.returncode == 0, result.stderr
    assert list((folder / "new").iterdir()) == [first] and pending() == 0

    first.rename(folder / "cur" / f"{first.name}:2,S")  # a mail client read it
    forget_the_record()
    assert digest("run", "--config", str(config), "--date", "2026-03-13").returncode == 0
    assert len(mailbox.Maildir(folder, create=False)) == 1 and pending() == 0
