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


def digest(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "digest", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
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
