"""The HTML email as a reader sees it: headless Chromium at phone and desktop widths.

Screenshots are saved under build/screenshots/ (or $DIGEST_SCREENSHOTS) so a person can
look at them after the run.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conftest import IN_CI, REPO, day
from digest.config import load_config
from digest.pipeline import run_once
from digest.render.context import TITLE_LIMIT

SCREENSHOTS = Path(os.environ.get("DIGEST_SCREENSHOTS", REPO / "build" / "screenshots"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LONG_WORD = "Supercalifragilistic" * 12  # 240 characters without a break
HOSTILE = [
    f"A Title With One Very Long Word {LONG_WORD} In The Middle",
    "Attention <script>alert('x')</script> Is All You Need",
    "Right-to-left \u202ekcatta\u202c and emoji 🚀🧠 in a title",
    "A " + "long title " * 60,
]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if IN_CI:
            pytest.fail("chromium is not installed; .ci/run installs Debian's chromium")
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    return path


@pytest.fixture
def email_html(make_config, seeds) -> tuple[str, list[str]]:
    config = make_config(
        subscribers='\n[[subscribers]]\nname = "reader"\nemail = "reader@example.org"\n'
        'keywords = ["attention", "diffusion", "title"]\nmax_papers = 40\nchannels = ["email"]\n'
    )
    shutil.copy(seeds[2], config.parent / "inbox" / "capture.txt")
    items = [
        {
            "paper": {
                "id": f"2603.0{i}999",
                "title": title,
                "summary": "A diffusion abstract. " * 30,
                "authors": [{"name": "Ünïcode Äuthor"}],
            }
        }
        for i, title in enumerate(HOSTILE, start=1)
    ]
    (config.parent / "inbox" / "daily.json").write_text(json.dumps(items), encoding="utf-8")
    report = run_once(
        load_config(config), today=day(0), clock=lambda: datetime(2026, 3, 13, 7, tzinfo=UTC)
    )
    titles = [p["title"] for p in report.subscribers["reader"].papers]
    eml = config.parent / "out" / "email" / "reader" / "2026-03-13.eml"
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    return message.get_body(("html",)).get_content(), titles


@pytest.mark.slow
@pytest.mark.parametrize("width", [375, 1200])
def test_email_fits_the_screen_and_shows_every_title(email_html, width, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    html, titles = email_html
    assert len(titles) >= 10
    page_file = tmp_path / "email.html"
    page_file.write_text(html, encoding="utf-8")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        try:
            for scheme in ("light", "dark"):
                page = browser.new_page(
                    viewport={"width": width, "height": 900}, color_scheme=scheme
                )
                page.goto(page_file.as_uri())
                scroll_width, client_width = page.evaluate(
                    "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
                )
                assert scroll_width <= client_width, f"horizontal overflow at {width}px ({scheme})"
                headings = page.locator(".paper h2")
                assert headings.count() == len(titles)
                shown = [
                    " ".join(headings.nth(i).inner_text().split()) for i in range(headings.count())
                ]
                for number, (title, heading) in enumerate(zip(titles, shown, strict=True), start=1):
                    title = " ".join(title.split())
                    if len(title) > TITLE_LIMIT:  # shown cut, so it cannot crowd out others
                        title = title[: TITLE_LIMIT - 1].rstrip() + "…"
                    assert heading == f"{number}. {title}"
                    assert headings.nth(number - 1).is_visible()
                    box = headings.nth(number - 1).bounding_box()
                    assert (
                        box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width + 1
                    )
                page.screenshot(
                    path=str(SCREENSHOTS / f"email-{width}px-{scheme}.png"), full_page=True
                )
                page.close()
        finally:
            browser.close()
    assert (SCREENSHOTS / f"email-{width}px-light.png").stat().st_size > 10_000
