"""The command line as a user meets it: help, check, run, preview, state, exit statuses."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from digest.cli import main


def digest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "digest", *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def config(make_config, seeds) -> Path:
    path = make_config()
    shutil.copy(seeds[2], path.parent / "inbox" / "capture.txt")
    return path


@pytest.mark.parametrize("command", [[], ["run"], ["check"], ["preview"], ["state"]])
def test_every_command_has_help(command):
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output and len(result.output.splitlines()) > 4


def test_check_accepts_a_good_config_and_lists_what_is_wrong_with_a_bad_one(config, tmp_path):
    good = digest("check", "--config", str(config))
    assert good.returncode == 0 and "config OK" in good.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text(
        config.read_text()
        .replace("max_papers = 1000", 'max_papers = "many"')
        .replace("inbox/*", "missing/*")
    )
    result = digest("check", "--config", str(bad))
    assert result.returncode == 2
    assert (
        f"error: {bad}:" in result.stderr
        and "subscribers[0].max_papers: expected a whole number" in result.stderr
    )
    unmatched = tmp_path / "unmatched.toml"
    unmatched.write_text(config.read_text().replace("inbox/*", "missing/*"))
    result = digest("check", "--config", str(unmatched))
    assert result.returncode == 2 and "source inbox: no file matches" in result.stderr


def test_missing_config_is_a_clear_error():
    result = digest("run", "--config", "/nonexistent/config.toml")
    assert result.returncode == 2
    assert "error: /nonexistent/config.toml: config file not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_json_report_has_the_documented_shape(config):
    result = digest("run", "--config", str(config), "--date", "2026-03-13", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["date"] == "2026-03-13"
    source = report["sources"]["inbox"]
    assert (source["papers"], source["new"], source["error"]) == (38, 38, None)
    alice = report["subscribers"]["all"]
    assert {k: alice[k] for k in ("candidates", "selected", "delivered", "error")} == {
        "candidates": 38,
        "selected": 38,
        "delivered": 38,
        "error": None,
    }
    first = alice["papers"][0]
    assert set(first) >= {"id", "title", "score", "matched"}
    assert first["id"].startswith("title:lingen")


def test_dry_run_writes_outputs_and_records_nothing(config):
    dry = digest("run", "--config", str(config), "--date", "2026-03-13", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["subscribers"]["all"]["delivered"] == 38
    assert (config.parent / "out" / "pages" / "all" / "2026-03-13.html").exists()
    real = digest("run", "--config", str(config), "--date", "2026-03-13", "--json")
    assert json.loads(real.stdout)["subscribers"]["all"]["delivered"] == 38  # nothing was used up


def test_preview_renders_without_recording(config, tmp_path):
    out = tmp_path / "preview.html"
    result = digest(
        "preview",
        "--config",
        str(config),
        "--subscriber",
        "all",
        "--date",
        "2026-03-13",
        "-o",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    assert "38 papers (of 38 new)" in result.stdout
    assert out.read_text().count('class="paper"') == 38
    eml = tmp_path / "preview.eml"
    digest("preview", "--config", str(config), "-s", "all", "--format", "eml", "-o", str(eml))
    assert b"\r\nSubject: Paper digest for " in eml.read_bytes()
    state = digest("state", "--config", str(config), "--json")
    summary = json.loads(state.stdout)
    assert summary["papers"] == 0 and summary["runs"] == []
    unknown = digest("preview", "--config", str(config), "-s", "nobody")
    assert unknown.returncode == 2 and "no reader 'nobody' in" in unknown.stderr


def test_state_shows_papers_deliveries_and_runs(config):
    assert digest("state", "--config", str(config)).returncode == 3  # no store yet
    digest("run", "--config", str(config), "--date", "2026-03-13")
    result = digest("state", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "papers: 38 (0 with an arXiv id, 38 keys)" in result.stdout
    assert "all " in result.stdout and "delivered    38" in result.stdout
    assert "2026-03-13  ok" in result.stdout


def test_human_summary_lists_outputs_and_quiet_prints_nothing(config):
    result = digest("run", "--config", str(config), "--date", "2026-03-13")
    assert result.returncode == 0
    assert "all: 38 papers chosen from 38 new to them, 38 delivered" in result.stdout
    assert "2026-03-13.eml" in result.stdout
    quiet = digest("-q", "run", "--config", str(config), "--date", "2026-03-14")
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == ""
