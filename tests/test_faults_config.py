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
