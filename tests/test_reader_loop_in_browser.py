"""The reader's whole loop in a real browser (Chromium driven by Playwright), against
`digest serve` on loopback, with every mail read back from a real SMTP server:

sign up, receive the confirmation, confirm, get the first digest, change keywords on the
manage page and see the next digest follow them, rate a paper, unsubscribe with the page's
button; a second reader leaves by the RFC 8058 one-click POST its mail provider would make
from the ``List-Unsubscribe`` header; the next run sends to neither.
"""

from __future__ import annotations

import json
import re
import shutil
from email.message import EmailMessage

import httpx
import pytest
from test_email_in_browser import CHROMIUM_ARGS, chromium
from web_site import Site, extract_link, running_site

from conftest import day

GENEROUS = "signups_per_client_per_hour = 1000\nposts_per_client_per_minute = 1000\n"
FIRST = "diffusion"
SECOND = "reinforcement learning"


@pytest.fixture
def site(make_config, seeds, monkeypatch):
    with running_site(make_config, seeds, monkeypatch, web=GENEROUS, subscribers="") as running:
        yield running


DAY2_TITLES = [
    "Reinforcement learning for robots that fold laundry",
    "Diffusion models for molecules",
    "Offline reinforcement learning with small data",
    "Diffusion transformers at scale",
]


def write_listing(site: Site, name: str, prefix: str, titles: list[str]) -> None:
    """A day's Hugging Face listing (daily_papers JSON) with these titles."""
    items = [
        {"paper": {"id": f"{prefix}{k:04d}", "title": t, "summary": f"{t}.", "authors": []}}
        for k, t in enumerate(titles)
    ]
    (site.folder / "inbox" / f"{name}.json").write_text(json.dumps(items), encoding="utf-8")


def html_link(message: EmailMessage, text: str) -> str:
    """The href of the first link whose text is ``text`` in the mail's HTML part."""
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    found = re.search(rf'<a[^>]*href="([^"]+)"[^>]*>\s*{re.escape(text)}\s*</a>', html)
    assert found, f"no {text!r} link in the email"
    return found.group(1).replace("&amp;", "&")


def one_click_url(message: EmailMessage) -> str:
    """The https (here http, on loopback) URL of the List-Unsubscribe header."""
    header = str(message["List-Unsubscribe"])
    urls = [u for u in re.findall(r"<([^>]+)>", header) if u.startswith("http")]
    assert urls and "mailto:" in header, header
    return urls[0]


def matched_terms(report, name: str) -> list[set[str]]:
    """What each paper matched of the reader's words: keywords, and "related" for the
    interest's related words (a paper's closest matches, "neighbours", name a title)."""
    return [
        {m.term for m in paper["matched"] if m.field != "neighbours"}
        for paper in report.subscribers[name].papers
    ]


def sign_up_in_browser(page, site: Site, address: str, keywords: str) -> EmailMessage:
    page.goto(f"{site.base}/subscribe")
    page.fill("#email", address)
    page.fill("#keywords", keywords)
    page.select_option("#timezone", "UTC")
    page.click("button[type=submit]")
    assert page.locator("h1").inner_text() == "Check your inbox"
    [mail] = site.mails_to(address)
    return mail


def confirm_in_browser(page, mail: EmailMessage) -> None:
    page.goto(extract_link(mail, "confirm"))
    page.click("button:has-text('Confirm')")


@pytest.mark.slow
def test_a_reader_signs_up_follows_rates_and_leaves_and_another_leaves_in_one_click(site, seeds):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            blocked: list[str] = []  # CSP refusals and failed loads a page would show
            page.on("console", lambda m: blocked.append(m.text) if m.type == "error" else None)
            failed: list[str] = []
            page.on(
                "response",
                lambda r: failed.append(r.url) if r.status >= 400 else None,
            )

            # Sign up and confirm: a pending reader until the button is pressed.
            mail = sign_up_in_browser(page, site, "erin@example.org", FIRST)
            assert mail["Subject"] == "Confirm your paper digest subscription"
            assert site.status("erin@example.org") == "pending"
            confirm_in_browser(page, mail)
            assert site.status("erin@example.org") == "active"
            with site.store() as store:
                erin = store.get_subscriber("erin@example.org").name

            # The first digest follows the keywords given at sign-up.
            shutil.copy(seeds[0], site.folder / "inbox" / "day1.txt")
            report = site.run(day(1))
            first = matched_terms(report, erin)
            assert first and FIRST in first[0], first  # the best paper has the keyword
            # the rest the keyword or words its best papers use ("related"), nothing else
            assert all(terms <= {FIRST, "related"} for terms in first), first
            digest = site.mails_to("erin@example.org")[-1]
            assert digest["Subject"].startswith("Paper digest for")
            assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

            # New keywords on the manage page; the next digest follows them.
            page.goto(html_link(digest, "Manage preferences"))
            page.fill("#keywords", SECOND)
            page.click("button:has-text('Save')")
            with site.store() as store:
                assert store.get_subscriber(erin).settings.keywords == (SECOND,)
            write_listing(site, "day2", "2603.2", DAY2_TITLES)
            report = site.run(day(2))
            assert sorted(p["title"] for p in report.subscribers[erin].papers) == sorted(
                t for t in DAY2_TITLES if "reinforcement" in t.lower()
            )
            digest = site.mails_to("erin@example.org")[-1]

            # Rate the first paper of that digest: the link's page records nothing until
            # its button is pressed; then the ratings page lists it.
            page.goto(html_link(digest, "More like this"))
            with site.store() as store:
                assert store.ratings_of(erin) == []
            page.click("button:has-text('More papers like this')")
            with site.store() as store:
                [rating] = store.ratings_of(erin)
            assert rating.vote == 1 and rating.source == "web"
            page.goto(html_link(digest, "Your ratings"))
            assert rating.title[:40] in page.inner_text("body")

            # Leave with the page's button.
            page.goto(html_link(digest, "Unsubscribe"))
            assert site.status(erin) == "active"  # the GET changed nothing
            page.click("button:has-text('Unsubscribe')")
            assert site.status(erin) == "unsubscribed"

            # A second reader signs up, gets a digest and leaves by RFC 8058 one-click.
            other = browser.new_page()
            mail = sign_up_in_browser(other, site, "frank@example.org", SECOND)
            confirm_in_browser(other, mail)
            write_listing(site, "day3", "2603.3", DAY2_TITLES)
            site.run(day(3))
            frank_digest = site.mails_to("frank@example.org")[-1]
            assert frank_digest["Subject"].startswith("Paper digest for")
            answer = httpx.post(
                one_click_url(frank_digest),
                content=b"List-Unsubscribe=One-Click",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            assert answer.status_code == 200 and "location" not in answer.headers
            assert site.status("frank@example.org") == "unsubscribed"
            failed = [u for u in failed if not u.endswith("/favicon.ico")]
            assert failed == [], failed  # every stylesheet and page the reader met loaded
            refused = [m for m in blocked if not m.startswith("Failed to load resource")]
            assert refused == [], refused  # no page broke its own policy (CSP, scripts)
        finally:
            browser.close()

    # The next run, with new papers for both, sends to neither; a reader who stayed gets
    # its digest from that same run.
    gina = site.add_reader("gina@example.org")
    before = {a: len(site.mails_to(a)) for a in ("erin@example.org", "frank@example.org")}
    write_listing(site, "day4", "2603.4", DAY2_TITLES[:2])
    report = site.run(day(4))
    assert {a: len(site.mails_to(a)) for a in before} == before
    assert report.subscribers[gina].delivered == 2
    assert len(site.mails_to("gina@example.org")) == 1
