"""Acceptance: a run SIGKILLed mid-delivery is completed by the next run, nothing twice.

The child process is the real CLI; the test only wraps one method so that the process
kills itself with SIGKILL at a precise point (no cleanup, no atexit, no finally blocks).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import day

SUBSCRIBERS = "".join(
    f"""
[[subscribers]]
name = "reader{i}"
email = "reader{i}@example.org"
keywords = []
max_papers = 50
channels = ["email", "feed", "page"]
"""
    for i in range(1, 5)
)

KILL_AFTER_MARK = """
from digest.store.store import Store
original = Store.mark_delivered
def mark_delivered(self, digest_id, channel, now):
    original(self, digest_id, channel, now)
    if channel == "email":
        os.kill(os.getpid(), signal.SIGKILL)
Store.mark_delivered = mark_delivered
"""

KILL_BEFORE_MARK = """
from digest.channels.email_files import EmlFileChannel
original = EmlFileChannel.deliver
def deliver(self, *args, **kwargs):
    original(self, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
EmlFileChannel.deliver = deliver
"""


def run_cli(config: Path, *extra: str, patch: str = "") -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(
        f"""
        import os, signal, sys
        {textwrap.indent(patch, "        ").strip()}
        from digest.cli import main
        sys.argv = ["digest", *sys.argv[1:]]
        main()
        """
    )
    return subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            "run",
            "--config",
            str(config),
            "--date",
            day(0).isoformat(),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def emails(config: Path) -> dict[str, int]:
    folder = config.parent / "out" / "email"
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*.eml")}


@pytest.fixture
def crash_config(make_config, seeds) -> Path:
    config = make_config(subscribers=SUBSCRIBERS)
    shutil.copy(seeds[1], config.parent / "inbox" / seeds[1].name)
    return config


def test_killed_after_first_email_recorded_next_run_writes_exactly_the_missing(crash_config):
    killed = run_cli(crash_config, patch=KILL_AFTER_MARK)
    assert killed.returncode == -signal.SIGKILL
    first = emails(crash_config)
    assert list(first) == ["reader1/2026-03-13.eml"]

    again = run_cli(crash_config, "--json")
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    written = {
        name
        for name, sub in report["subscribers"].items()
        for d in sub["deliveries"]
        if d["channel"] == "email"
    }
    assert written == {"reader2", "reader3", "reader4"}
    # reader1's feed and page were still pending: they were completed, its email was not redone
    assert {d["channel"] for d in report["subscribers"]["reader1"]["deliveries"]} == {
        "feed",
        "page",
    }
    final = emails(crash_config)
    assert sorted(final) == [f"reader{i}/2026-03-13.eml" for i in range(1, 5)]
    assert final["reader1/2026-03-13.eml"] == first["reader1/2026-03-13.eml"]

    third = run_cli(crash_config, "--json")
    assert third.returncode == 0
    assert all(s["deliveries"] == [] for s in json.loads(third.stdout)["subscribers"].values())
    assert emails(crash_config) == final


def test_killed_between_writing_and_recording_resends_only_that_one_identically(crash_config):
    killed = run_cli(crash_config, patch=KILL_BEFORE_MARK)
    assert killed.returncode == -signal.SIGKILL
    path = crash_config.parent / "out" / "email" / "reader1" / "2026-03-13.eml"
    in_flight = path.read_bytes()

    again = run_cli(crash_config, "--json")
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert [d["channel"] for d in report["subscribers"]["reader1"]["deliveries"]].count(
        "email"
    ) == 1
    assert sorted(emails(crash_config)) == [f"reader{i}/2026-03-13.eml" for i in range(1, 5)]
    # The one message that was in flight is written again under the same name and Message-ID.
    resent = path.read_bytes()
    message_id = [line for line in in_flight.splitlines() if line.startswith(b"Message-ID:")]
    assert message_id
    assert message_id == [line for line in resent.splitlines() if line.startswith(b"Message-ID:")]
    # Every paper went to reader1 once: the digest was not remade with other papers.
    assert report["subscribers"]["reader1"]["candidates"] == 0


KILL_MID_WRITE = """
import pathlib
original = pathlib.Path.replace
def replace(self, target):
    if str(target).endswith(".eml"):
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self, target)
pathlib.Path.replace = replace
"""


def test_killed_mid_write_leaves_no_email_and_no_debris(crash_config):
    killed = run_cli(crash_config, patch=KILL_MID_WRITE)
    assert killed.returncode == -signal.SIGKILL
    out = crash_config.parent / "out"
    assert emails(crash_config) == {}  # the half-made email never appeared under its name
    assert [p.name for p in out.rglob("*.tmp")]  # its temporary file is still there

    again = run_cli(crash_config)
    assert again.returncode == 0, again.stderr
    assert sorted(emails(crash_config)) == [f"reader{i}/2026-03-13.eml" for i in range(1, 5)]
    assert [p for p in out.rglob("*.tmp")] == []
