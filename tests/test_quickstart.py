"""Acceptance: the README's quick start works in a fresh virtualenv, as a newcomer runs it."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from conftest import REPO

IGNORED = shutil.ignore_patterns(
    ".venv",
    ".git",
    "__pycache__",
    "*.egg-info",
    ".pytest_cache",
    ".ruff_cache",
    "out",
    "digest.db*",
    "build",
    "dist",
)


def quick_start_commands() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", section, flags=re.DOTALL)


def test_readme_gives_two_commands_and_ci_runs_the_test_command():
    commands = quick_start_commands()
    assert len(commands) == 2
    install_and_run, run_tests = commands
    assert "examples/config.toml" in install_and_run and "\n" not in install_and_run
    assert "pytest" in run_tests and "\n" not in run_tests
    assert run_tests in (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()


@pytest.mark.slow
def test_install_and_run_command_works_in_a_fresh_copy(tmp_path):
    copy = tmp_path / "paper-digest"
    shutil.copytree(REPO, copy, ignore=IGNORED)
    install_and_run = quick_start_commands()[0]
    first = subprocess.run(
        ["bash", "-c", install_and_run], cwd=copy, capture_output=True, text=True, timeout=900
    )
    assert first.returncode == 0, first.stdout + first.stderr
    out = copy / "examples" / "out"
    emails = sorted(out.glob("email/*/*.eml"))
    assert [p.parent.name for p in emails] == ["alice", "bob"]
    assert (out / "feeds" / "alice.atom").exists() and sorted(out.glob("pages/alice/*.html"))
    for email_file in emails:
        assert str(email_file.relative_to(copy)) in first.stdout  # the summary says where

    again = subprocess.run(
        [".venv/bin/digest", "run", "--config", "examples/config.toml"],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    assert "Nothing new to deliver" in again.stdout
