"""Every paper recorded as delivered is one the reader can reach from what it received.

Real runs on a temporary SQLite store, their outputs read back with the stdlib ``email``
package and feedparser: the papers each reader's emails and feed show are counted against
the papers the store's ledger records as delivered to it.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import feedparser
import pytest

from conftest import day
from digest.config import load_config
from digest.pipeline import run_once
from digest.ranker import listing_days

GMAIL_CLIPS_AT = 102_000


def reader(name: str, channels: list[str], **settings: object) -> str:
    extra = "".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items())
    return (
        f'\n[[subscribers]]\nname = "{name}"\nemail = "{name}@example.org"\n'
        f"keywords = []\nchannels = {json.dumps(channels)}\n{extra}"
    )


def listing(
    folder: Path, papers: list[tuple[str, str]], name: str = "daily.json", first: int = 1
) -> None:
    """A saved Hugging Face daily_papers response with these (title, abstract) papers,
    numbered from ``first`` (arXiv ids 2603.00001...)."""
    items = [
        {"paper": {"id": f"2603.{n:05d}", "title": title, "summary": abstract}}
        for n, (title, abstract) in enumerate(papers, start=first)
    ]
    (folder / "inbox" / name).write_text(json.dumps(items), encoding="utf-8")


def many_papers(count: int, start: int = 0) -> list[tuple[str, str]]:
    abstract = "We study how a long abstract fills an email, one sentence at a time. " * 9
    return [
        (f"Paper {n} about efficient sequence models", abstract)
        for n in range(start, start + count)
    ]


def run(config: Path, n: int = 0):
    clock = lambda: datetime(2026, 3, 13 + n, 7, 30, tzinfo=UTC)  # noqa: E731
    return run_once(load_config(config), today=day(n), clock=clock)


def delivered(config: Path, subscriber: str) -> int:
    """Papers the ledger records as chosen for ``subscriber`` in digests whose every
    delivery is confirmed."""
    with sqlite3.connect(config.parent / "state" / "digest.db") as conn:
        pending = conn.execute("SELECT count(*) FROM deliveries WHERE status != 'done'").fetchone()[
            0
        ]
        assert pending == 0
        return conn.execute(
            "SELECT count(*) FROM ledger WHERE subscriber = ? AND status = 'selected'",
            (subscriber,),
        ).fetchone()[0]


def emails_of(config: Path, subscriber: str) -> list[EmailMessage]:
    folder = config.parent / "out" / "email" / subscriber
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted(folder.glob("*.eml"))
    ]


def html_of(message: EmailMessage) -> str:
    return message.get_body(("html",)).get_content()


def papers_shown(html: str) -> int:
    """Paper cards in an HTML part: one <h2> with a link each."""
    return html.count('<div class="paper"')


def test_a_digest_too_large_for_one_email_is_sent_as_several_that_show_every_paper(
    make_config,
):
    config = make_config(subscribers=reader("ann", ["email"], max_papers=1000))
    listing(config.parent, many_papers(119))
    report = run(config)
    assert report.ok, report.to_json()
    messages = emails_of(config, "ann")
    assert len(messages) > 1
    for message in messages:
        assert len(html_of(message).encode()) < GMAIL_CLIPS_AT
    shown = [papers_shown(html_of(m)) for m in messages]
    assert sum(shown) == delivered(config, "ann") == 119
    assert len({m["Message-ID"] for m in messages}) == len(messages)
    texts = [m.get_body(("plain",)).get_content() for m in messages]
    assert sum(t.count("https://arxiv.org/abs/") for t in texts) == 119
    assert all("did not fit" not in html_of(m) for m in messages)


def test_links_of_an_email_lead_only_to_what_is_written(make_config):
    config = make_config(subscribers=reader("ann", ["email"]))
    text = config.read_text().replace(
        "[output]\n", '[output]\nbase_url = "https://digest.example.org"\n'
    )
    config.write_text(text)
    listing(config.parent, many_papers(3))
    assert run(config).ok
    [message] = emails_of(config, "ann")
    html = html_of(message)
    assert "digest.example.org/pages/" not in html  # no page channel: no page to link
    assert "digest.example.org/feeds/" not in html
    assert papers_shown(html) == delivered(config, "ann") == 3


def test_a_huge_title_does_not_hide_the_other_papers(make_config):
    config = make_config(subscribers=reader("ann", ["email"]))
    papers = many_papers(10)
    papers[0] = ("A title " + "that never ends " * 6_400, papers[0][1])  # 100 KB
    listing(config.parent, papers)
    assert run(config).ok
    messages = emails_of(config, "ann")
    assert len(messages) == 1
    html = html_of(messages[0])
    assert len(html.encode()) < GMAIL_CLIPS_AT
    assert papers_shown(html) == delivered(config, "ann") == 10


def feed_entries(config: Path, subscriber: str) -> dict[str, int]:
    """How many entries each of the subscriber's feeds holds, read back with feedparser."""
    folder = config.parent / "out" / "feeds"
    counts = {}
    for kind in ("rss", "atom"):
        parsed = feedparser.parse((folder / f"{subscriber}.{kind}").read_bytes())
        assert parsed.bozo == 0
        counts[kind] = len(parsed.entries)
    return counts


def test_a_feed_holds_every_paper_of_its_newest_digests_whatever_feed_items(make_config):
    config = make_config(subscribers=reader("fay", ["feed"], max_papers=1000))
    text = config.read_text().replace("[output]\n", "[output]\nfeed_items = 5\n")
    config.write_text(text)
    listing(config.parent, many_papers(20))
    assert run(config).ok
    assert feed_entries(config, "fay") == {"rss": 20, "atom": 20}
    assert delivered(config, "fay") == 20
    # The next day's digest is the newest: the feed keeps it whole, and the older papers
    # only up to feed_items (they were shown in full the day before).
    listing(config.parent, many_papers(3, start=20), name="next.json", first=21)
    (config.parent / "inbox" / "daily.json").unlink()
    assert run(config, 1).ok
    assert delivered(config, "fay") == 23
    assert feed_entries(config, "fay") == {"rss": 5, "atom": 5}


def test_a_digest_cut_into_several_emails_is_whole_in_the_feed(make_config):
    config = make_config(subscribers=reader("gus", ["email", "feed"], max_papers=1000))
    text = config.read_text().replace("[output]\n", "[output]\nfeed_items = 10\n")
    config.write_text(text)
    listing(config.parent, many_papers(119))
    assert run(config).ok
    assert len(emails_of(config, "gus")) > 1
    assert feed_entries(config, "gus") == {"rss": 119, "atom": 119}
    assert delivered(config, "gus") == 119


def test_after_downtime_each_missed_listing_day_gets_its_own_budget(make_config):
    config = make_config(subscribers=reader("hal", ["email"], max_papers=3))
    listing(config.parent, many_papers(2))
    assert run(config).ok  # Friday 2026-03-13
    assert delivered(config, "hal") == 2
    # Down for a week: the next run, on Friday 2026-03-20, finds five weekdays of
    # listings, four papers each.
    for n in range(5):
        listing(
            config.parent, many_papers(4, start=10 * n), name=f"day{n}.json", first=100 + 10 * n
        )
    report = run(config, 7)
    assert report.ok, report.to_json()
    assert report.subscribers["hal"].selected == 15  # 3 for each of the 5 listing days
    assert delivered(config, "hal") == 2 + 15
    messages = emails_of(config, "hal")
    assert sum(papers_shown(html_of(m)) for m in messages) == 2 + 15
    # The next day is one listing day again.
    listing(config.parent, many_papers(6, start=90), name="next.json", first=200)
    assert run(config, 8).subscribers["hal"].selected == 3


def test_listing_days_count_the_weekdays_a_digest_covers():
    friday = date(2026, 3, 13)
    assert listing_days(None, friday) == 1  # a first digest
    assert listing_days(friday, friday + timedelta(days=3)) == 1  # Monday after Friday
    assert listing_days(friday, friday + timedelta(days=1)) == 1  # a weekend run
    assert listing_days(friday, friday + timedelta(days=7)) == 5
    assert listing_days(friday, friday + timedelta(days=14)) == 10
    assert listing_days(friday + timedelta(days=1), friday) == 1  # an earlier date replayed


@pytest.mark.slow
def test_each_email_of_a_large_digest_is_confirmed_on_its_own(make_config, smtp_server):
    recorder, port = smtp_server
    config = make_config(
        subscribers=reader("ivy", ["email"], max_papers=1000),
        extra=(
            '\n[email]\nfrom = "Digest <digest@lab.example.org>"\nhost = "127.0.0.1"\n'
            f'port = {port}\nsecurity = "none"\nretries = 1\nretry_backoff = 0.01\n'
        ),
    )
    listing(config.parent, many_papers(119))

    def refuse_the_next_email(accepted: int) -> None:
        if accepted == 1:  # the second email is refused, and refused again when retried
            recorder.data_replies = ["451 4.3.0 try again later"] * 2

    recorder.on_message = refuse_the_next_email
    first = run(config)
    assert not first.ok
    parts = len(recorder.messages) + 1  # all were sent but the refused one
    assert parts >= 3
    second = run(config)
    assert second.ok, second.to_json()
    messages = [
        email.message_from_bytes(raw, policy=email.policy.default)
        for _rcpts, raw in recorder.messages
    ]
    assert len(messages) == parts  # every email once: the refused one only came again
    assert len({m["Message-ID"] for m in messages}) == parts
    assert sum(papers_shown(html_of(m)) for m in messages) == delivered(config, "ivy") == 119


@pytest.mark.slow
def test_killed_between_the_emails_of_a_digest_the_next_run_sends_only_the_rest(
    make_config, smtp_server
):
    recorder, port = smtp_server
    config = make_config(
        subscribers=reader("joe", ["email"], max_papers=1000),
        extra=(
            '\n[email]\nfrom = "Digest <digest@lab.example.org>"\nhost = "127.0.0.1"\n'
            f'port = {port}\nsecurity = "none"\nretries = 1\nretry_backoff = 0.01\n'
        ),
    )
    listing(config.parent, many_papers(119))
    child: dict[str, subprocess.Popen[str]] = {}

    def kill_on_second(count: int) -> None:
        if count == 2:  # the server has the 2nd email; its sender dies before hearing 250
            os.kill(child["p"].pid, signal.SIGKILL)

    recorder.on_message = kill_on_second
    command = [sys.executable, "-m", "digest", "run", "--config", str(config)]
    command += ["--date", "2026-03-13"]
    child["p"] = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        child["p"].communicate(timeout=120)
    finally:
        child["p"].kill()
    assert child["p"].returncode == -signal.SIGKILL
    recorder.on_message = None
    again = subprocess.run([*command, "--json"], capture_output=True, timeout=120)
    assert again.returncode == 0, again.stderr
    messages = [
        email.message_from_bytes(raw, policy=email.policy.default)
        for _rcpts, raw in recorder.messages
    ]
    ids = [m["Message-ID"] for m in messages]
    assert len(set(ids)) >= 3
    assert [i for i in set(ids) if ids.count(i) > 1] == [ids[1]]  # only the one in flight
    unique = {m["Message-ID"]: m for m in messages}.values()
    assert sum(papers_shown(html_of(m)) for m in unique) == delivered(config, "joe") == 119
