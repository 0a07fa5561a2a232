"""Acceptance: broken listings give clear errors naming the file; nothing else is lost."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import day
from digest.config import load_config
from digest.pipeline import run_once


def _sources(names: list[str]) -> str:
    return "".join(
        f"""
[[sources]]
name = "{name}"
kind = "file"
path = "{name}/*"
"""
        for name in names
    )


BROKEN = {
    "truncated_json": lambda f: (
        f / "hf_daily_papers" / "daily_papers_2026-06-12_sotawhat.json"
    ).read_bytes()[:5000],
    "truncated_xml": lambda f: (
        f / "arxiv_api" / "query_transformer_cs.LG_2026-06-14_new_format_sotawhat.xml"
    ).read_bytes()[:3000],
    "empty": lambda f: b"",
    "blank": lambda f: b"\n\n   \n",
    "binary": lambda f: bytes(range(256)) * 8,
    "html_error_page": lambda f: (
        b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    ),
    "not_a_listing": lambda f: b"Just a note to myself.\nNothing to see here.\n",
}
EXPECTED_MESSAGE = {
    "truncated_json": "not valid JSON",
    "truncated_xml": "malformed XML at line",
    "empty": "the file is empty",
    "blank": "the file is empty",
    "binary": "a binary file",
    "html_error_page": "an HTML page, not a listing",
    "not_a_listing": "no paper found",
}


@pytest.fixture
def broken_setup(make_config, seeds, fixtures_dir) -> Path:
    names = ["good", *BROKEN]
    config = make_config(sources=_sources(names))
    for name in names:
        (config.parent / name).mkdir()
    shutil.copy(seeds[2], config.parent / "good" / "capture.txt")
    for name, make in BROKEN.items():
        (config.parent / name / f"listing-{name}.dat").write_bytes(make(fixtures_dir))
    return config


def test_each_broken_file_is_reported_by_name_and_the_good_source_still_delivers(
    broken_setup, clock
):
    report = run_once(load_config(broken_setup), today=day(0), clock=clock)

    assert not report.ok
    assert report.sources["good"].error is None
    assert report.sources["good"].new == 38
    assert report.subscribers["all"].delivered == 38
    assert report.subscribers["all"].error is None
    for name, expected in EXPECTED_MESSAGE.items():
        error = report.sources[name].error
        assert error is not None, name
        assert str(broken_setup.parent / name / f"listing-{name}.dat") in error, error
        assert expected in error, (name, error)
        assert report.sources[name].new == 0


def test_a_fixed_file_delivers_its_papers_on_the_next_run(broken_setup, fixtures_dir, clock):
    config = load_config(broken_setup)
    run_once(config, today=day(0), clock=clock)
    fixed = broken_setup.parent / "truncated_json" / "listing-truncated_json.dat"
    fixed.write_bytes(
        (fixtures_dir / "hf_daily_papers" / "daily_papers_2026-06-12_sotawhat.json").read_bytes()
    )

    clock.advance(days=1)
    report = run_once(config, today=day(1), clock=clock)
    assert report.sources["truncated_json"].error is None
    assert report.sources["truncated_json"].new == 30
    assert report.subscribers["all"].delivered == 30


def test_one_bad_file_among_good_ones_keeps_the_good_files(make_config, seeds, clock):
    config = make_config()
    inbox = config.parent / "inbox"
    shutil.copy(seeds[0], inbox / "a.txt")
    (inbox / "b.json").write_text('[{"paper": ', encoding="utf-8")
    report = run_once(load_config(config), today=day(0), clock=clock)
    assert report.sources["inbox"].new == 119
    assert "b.json: not valid JSON" in (report.sources["inbox"].error or "")
    assert report.subscribers["all"].delivered == 119


def test_cli_exits_nonzero_and_says_which_file(broken_setup):
    result = subprocess.run(
        [sys.executable, "-m", "digest", "run", "--config", str(broken_setup), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert "listing-binary.dat: a binary file" in report["sources"]["binary"]["error"]
    assert "listing-binary.dat: a binary file" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_glob_that_matches_nothing_is_an_error(make_config, clock):
    config = make_config()
    report = run_once(load_config(config), today=day(0), clock=clock)
    assert "no file matches" in (report.sources["inbox"].error or "")
    assert not report.ok
