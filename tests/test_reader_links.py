"""Signed reader links in what a reader receives: the email's headers and footer, and the
"more like this / less like this" links beside every paper of the email, the page and the
feed. A real run to a real SMTP server, pages and feeds read back from disk."""

from __future__ import annotations

import email
import email.policy
import json
import re
import shutil
import threading
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path

import feedparser
import httpx
import pytest
from click.testing import CliRunner

from conftest import bound_socket, day, free_port
from digest import serve
from digest.cli import main
from digest.config import load_config
from digest.errors import ConfigError
from digest.pipeline import open_store, run_once
from digest.render.email import MAX_HTML_BYTES
from digest.report import redactor_for
from digest.store import Store
from digest.tokens import Signer

BASE = "https://papers.example.org"
SECRET = "s3cret-for-tests-only-0123456789"
NOW = datetime(2026, 3, 13, 7, 30, tzinfo=UTC)
READERS = {"alice": ["linear attention", "mamba"], "bob": ["diffusion", "video generation"]}


def reader_config(make_config, seeds, port: int, *, signed: bool = True) -> Path:
    readers = "".join(
        f'\n[[subscribers]]\nname = "{name}"\nemail = "{name}@example.org"\n'
        f'keywords = {keywords!r}\nchannels = ["email", "feed", "page"]\n'.replace("'", '"')
        for name, keywords in READERS.items()
    )
    extra = (
        f'\n[email]\nfrom = "Paper Digest <digest@lab.example.org>"\nhost = "127.0.0.1"\n'
        f'port = {port}\nsecurity = "none"\nretries = 0\n'
    )
    if signed:
        extra += '\n[web]\nsecret_env = "DIGEST_TEST_WEB_SECRET"\n'
    config = make_config(subscribers=readers, extra=extra)
    if signed:
        text = config.read_text(encoding="utf-8")
        config.write_text(
            text.replace("[output]\n", f'[output]\nbase_url = "{BASE}"\n', 1), encoding="utf-8"
        )
    for capture in seeds:
        shutil.copy(capture, config.parent / "inbox" / capture.name)
    return config


@pytest.fixture
def secret(monkeypatch):
    monkeypatch.setenv("DIGEST_TEST_WEB_SECRET", SECRET)
    return Signer([SECRET])


def received(recorder, name: str) -> EmailMessage:
    [content] = recorder.for_recipient(f"{name}@example.org")
    message = email.message_from_bytes(content, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def token_of(url: str, route: str) -> str:
    match = re.fullmatch(rf"{re.escape(BASE)}/{route}/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)", url)
    assert match, url
    return match.group(1)


def rating_links(text: str) -> list[tuple[str, str]]:
    """(token, vote) of every rating link in ``text``."""
    return re.findall(rf"{re.escape(BASE)}/rate/([A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)/(up|down)", text)


def test_every_email_has_signed_unsubscribe_headers_and_footer_links(
    make_config, seeds, smtp_server, secret
):
    recorder, port = smtp_server
    config = load_config(reader_config(make_config, seeds, port))
    report = run_once(config, today=day(0), clock=lambda: NOW)
    assert report.ok, report.to_json()
    with Store.open(config.resolve(config.store.path)) as store:
        for name in READERS:
            message = received(recorder, name)
            key = store.reader_key(name, NOW)
            header = message["List-Unsubscribe"]
            https, mailto = (part.strip("<> ") for part in header.split(","))
            token = token_of(https, "unsubscribe")  # HTTPS first
            assert secret.verify(token, "unsubscribe", NOW).key == key
            assert mailto == f"mailto:digest@lab.example.org?subject=unsubscribe%20{token}"
            assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            assert name not in header and "example.org?subject" in header
            assert f"{name}@" not in header

            html = message.get_body(("html",)).get_content()
            text = message.get_body(("plain",)).get_content()
            for body in (html, text):
                for label, route in (
                    ("Manage preferences", "manage"),
                    ("Your ratings", "ratings"),
                    ("Unsubscribe", "unsubscribe"),
                ):
                    assert label in body
                    urls = re.findall(rf"{re.escape(BASE)}/{route}/[A-Za-z0-9_\-.]+", body)
                    assert urls, (name, route)
                    assert {secret.verify(token_of(u, route), route, NOW).key for u in urls} == {
                        key
                    }
            assert store.reader_of_key(key) == name


def test_every_paper_of_email_page_and_feed_has_more_and_less_like_this_links(
    make_config, seeds, smtp_server, secret
):
    recorder, port = smtp_server
    config = load_config(reader_config(make_config, seeds, port))
    report = run_once(config, today=day(0), clock=lambda: NOW)
    assert report.ok, report.to_json()
    out = config.resolve(config.output.dir)
    with Store.open(config.resolve(config.store.path)) as store:
        for name in READERS:
            key = store.reader_key(name, NOW)
            chosen = [store.find_paper(p["id"]).uid for p in report.subscribers[name].papers]
            assert chosen, name
            message = received(recorder, name)
            html = message.get_body(("html",)).get_content()
            text = message.get_body(("plain",)).get_content()
            [page] = (out / "pages" / name).glob("2026-*.html")
            feed = feedparser.parse((out / "feeds" / f"{name}.atom").read_bytes())
            contents = "".join(e.content[0].value for e in feed.entries)
            assert len(feed.entries) == len(chosen)
            for where, body in (
                ("html", html),
                ("text", text),
                ("page", page.read_text()),
                ("feed", contents),
            ):
                links = rating_links(body)
                assert len(links) == 2 * len(chosen), where
                rated = []
                for token, vote in links:
                    data = secret.verify(token, "rate", NOW)
                    assert data is not None and data.key == key, where
                    rated.append((int(data.subject), vote))
                # Each paper, in digest order: "more like this" then "less like this".
                assert rated == [(uid, vote) for uid in chosen for vote in ("up", "down")]
            assert html.count("More like this") == html.count("Less like this") == len(chosen)
            for entry in feed.entries:
                assert "More like this" in entry.content[0].value


def test_without_a_secret_there_are_no_signed_links_and_the_mailto_names_nobody(
    make_config, seeds, smtp_server
):
    recorder, port = smtp_server
    config = load_config(reader_config(make_config, seeds, port, signed=False))
    assert run_once(config, today=day(0), clock=lambda: NOW).ok
    message = received(recorder, "alice")
    assert message["List-Unsubscribe"] == "<mailto:digest@lab.example.org?subject=unsubscribe>"
    assert message["List-Unsubscribe-Post"] is None
    body = message.get_body(("html",)).get_content()
    assert "More like this" not in body and "Manage preferences" not in body
    with Store.open(config.resolve(config.store.path)) as store:
        assert store.reader_of_key("anything") is None  # no keys were made


class _Elements(HTMLParser):
    """Element names and links, as a browser would see them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.hrefs.extend(value or "" for name, value in attrs if name == "href")


HOSTILE = 'Linear attention "><script>alert(1)</script> for all'


def test_a_hostile_title_stays_text_beside_the_rating_links(
    make_config, seeds, smtp_server, secret
):
    recorder, port = smtp_server
    path = reader_config(make_config, seeds, port)
    listing = [
        {
            "paper": {
                "id": "2603.09999",
                "title": HOSTILE,
                "summary": "Linear attention <b>made</b> simple & fast.",
                "authors": [{"name": "Mallory", "hidden": False}],
                "publishedAt": "2026-03-12T00:00:00.000Z",
                "submittedOnDailyAt": "2026-03-13T00:00:00.000Z",
                "upvotes": 1,
            },
            "numComments": 0,
        }
    ]
    (path.parent / "inbox" / "daily.json").write_text(json.dumps(listing), encoding="utf-8")
    config = load_config(path)
    assert run_once(config, today=day(0), clock=lambda: NOW).ok
    out = config.resolve(config.output.dir)
    html = received(recorder, "alice").get_body(("html",)).get_content()
    [page] = (out / "pages" / "alice").glob("2026-*.html")
    for body in (html, page.read_text()):
        found = _Elements()
        found.feed(body)
        assert "script" not in found.tags and "b" not in found.tags
        rate = [h for h in found.hrefs if h.startswith(f"{BASE}/rate/")]
        assert rate and all(rating_links(h) for h in rate)
        assert "&lt;script&gt;" in body
    [entry] = [
        e
        for e in feedparser.parse((out / "feeds" / "alice.atom").read_bytes()).entries
        if "2603.09999" in e.link
    ]
    content = entry.content[0].value
    assert "&lt;b&gt;made&lt;/b&gt;" in content and "<b>" not in content  # the abstract
    assert len(rating_links(content)) == 2


def test_the_removed_unsigned_unsubscribe_url_is_refused_with_what_to_set_instead(
    make_config,
):
    config = make_config(
        extra='\n[email]\nfrom = "d@example.org"\n'
        'unsubscribe_url = "https://example.org/u?who={subscriber}"\n'
    )
    with pytest.raises(ConfigError) as raised:
        load_config(config)
    message = str(raised.value)
    line = (
        config.read_text()
        .splitlines()
        .index('unsubscribe_url = "https://example.org/u?who={subscriber}"')
    )
    assert message.startswith(f"{config}:{line + 1}: email.unsubscribe_url: no longer a setting")
    assert "[web] secret_env" in message and "[output] base_url" in message


def test_a_digest_too_large_for_one_email_is_cut_with_its_links_counted(make_config, seeds, secret):
    """The links make each paper longer: the emails are measured with them, so each one
    stays under the clipping limit and every paper is in one of them."""
    reader = (
        '\n[[subscribers]]\nname = "all"\nemail = "all@example.org"\nkeywords = []\n'
        'max_papers = 1000\nchannels = ["email"]\n'
    )
    path = make_config(subscribers=reader, extra='\n[web]\nsecret_env = "DIGEST_TEST_WEB_SECRET"\n')
    path.write_text(path.read_text().replace("[output]\n", f'[output]\nbase_url = "{BASE}"\n', 1))
    for capture in seeds:
        shutil.copy(capture, path.parent / "inbox" / capture.name)
    config = load_config(path)
    report = run_once(config, today=day(0), clock=lambda: NOW)
    assert report.ok, report.to_json()
    emails = sorted((config.resolve(config.output.dir) / "email" / "all").glob("*.eml"))
    assert len(emails) >= 2
    shown = 0
    for eml in emails:
        message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
        html = message.get_body(("html",)).get_content()
        assert len(html.encode()) <= MAX_HTML_BYTES, eml.name  # decoded, with its CRLFs
        shown += len(rating_links(html)) // 2
    assert shown == report.subscribers["all"].selected


# --- store readers: found by preview, explain, run --subscriber, serve and the redactor -----

ERIN_TOKEN = "erin-feed-token-0123456789abcdef"


@pytest.fixture
def store_readers(make_config, seeds, secret):
    """Config readers (alice, bob) and store readers: erin, private feed; carol, public feed;
    dave, unsubscribed. One run has delivered their feeds and pages."""
    path = reader_config(make_config, seeds, free_port())
    text = path.read_text().replace(
        'channels = ["email", "feed", "page"]', 'channels = ["feed", "page"]'
    )
    path.write_text(text)
    config = load_config(path)
    with open_store(config) as store:
        for name, extra in (
            ("erin", {"feed_token": ERIN_TOKEN}),
            ("carol", {}),
            ("dave", {}),
        ):
            store.add_subscriber(
                {
                    "email": f"{name}@example.org",
                    "name": name,
                    "keywords": ["diffusion"],
                    "channels": ["feed", "page"],
                    **extra,
                },
                NOW - timedelta(days=1),  # joined the day before: today's send hour serves them
            )
    assert run_once(config, today=day(0), clock=lambda: NOW).ok
    with open_store(config) as store:
        store.set_status("dave", "unsubscribed", NOW)
    return path


def test_preview_explain_and_run_find_a_store_reader_by_name_or_address(store_readers):
    path = store_readers
    out = path.parent / "preview.txt"
    tomorrow = {
        "id": "2603.20001",
        "title": "Diffusion for tomorrow",
        "summary": "A diffusion model that denoises images step by step.",
        "authors": [{"name": "Ada Lovelace", "hidden": False}],
        "publishedAt": "2026-03-14T00:00:00.000Z",
        "submittedOnDailyAt": "2026-03-14T00:00:00.000Z",
    }
    (path.parent / "inbox" / "tomorrow.json").write_text(json.dumps([{"paper": tomorrow}]))
    shown = CliRunner().invoke(
        main,
        [
            "preview",
            "--config",
            str(path),
            "--subscriber",
            "ERIN@example.org",
            "--format",
            "text",
            "-o",
            str(out),
            "--date",
            "2026-03-14",
        ],
    )
    assert shown.exit_code == 0, shown.output
    assert shown.output.startswith("1 papers (of 1 new)")
    assert "1 new paper for erin" in out.read_text()
    assert "Diffusion for tomorrow" in out.read_text()
    explained = CliRunner().invoke(
        main,
        [
            "explain",
            "--config",
            str(path),
            "--subscriber",
            "erin",
            "--paper",
            "Diffusion Probabilistic Model Made Slim",
        ],
    )
    assert explained.exit_code == 0, explained.output
    assert "For:    erin" in explained.output
    assert "Chosen for the digest of 2026-03-13" in explained.output
    assert "diffusion" in explained.output
    ran = CliRunner().invoke(
        main,
        ["run", "--config", str(path), "--subscriber", "carol@example.org", "--date", "2026-03-14"],
    )
    assert ran.exit_code == 0, ran.output
    assert "carol:" in ran.output and "alice:" not in ran.output
    unknown = CliRunner().invoke(
        main, ["preview", "--config", str(path), "--subscriber", "nobody", "-o", str(out)]
    )
    assert unknown.exit_code == 2 and "no reader 'nobody' in" in unknown.output


def test_serve_knows_store_readers_and_their_feed_tokens(store_readers, monkeypatch):
    monkeypatch.setattr(serve, "READERS_TTL", 0.0)  # every request reads the store
    config = load_config(store_readers)
    listening = bound_socket()
    port = listening.getsockname()[1]
    server = serve.make_http_server(config, "127.0.0.1", port, bound=listening)
    stop = threading.Event()
    thread = serve.serve_until(server, stop)
    base = f"http://127.0.0.1:{port}"
    try:
        private = httpx.get(f"{base}/feeds/erin.atom", params={"token": ERIN_TOKEN})
        assert private.status_code == 200
        assert feedparser.parse(private.content).feed.title == "Paper digest for erin"
        assert httpx.get(f"{base}/feeds/erin.atom", params={"token": "wrong"}).status_code == 404
        assert httpx.get(f"{base}/feeds/erin.atom").status_code == 404
        assert httpx.get(f"{base}/pages/erin/", params={"token": ERIN_TOKEN}).status_code == 200
        assert httpx.get(f"{base}/feeds/carol.rss").status_code == 200
        assert httpx.get(f"{base}/feeds/dave.rss").status_code == 404  # unsubscribed
        index = httpx.get(f"{base}/").text
        assert "/feeds/carol.atom" in index and "/feeds/alice.atom" in index
        assert "erin" not in index and "dave" not in index
        # A reader who becomes private (or leaves) is so from the next request on.
        with open_store(config) as store:
            store.update_subscriber("carol", {"feed_token": "carol-token-0123456789abcdef"}, NOW)
        assert httpx.get(f"{base}/feeds/carol.rss").status_code == 404
        assert "carol" not in httpx.get(f"{base}/").text
    finally:
        stop.set()
        thread.join(timeout=30)


def test_the_redactor_knows_store_readers_feed_tokens_and_every_web_secret(
    store_readers, monkeypatch
):
    rotated = "older-secret-still-accepted-0123456789"
    monkeypatch.setenv("DIGEST_TEST_WEB_SECRET", f"{SECRET} {rotated}")
    config = load_config(store_readers)
    leaked = f"server said: {ERIN_TOKEN}, then {SECRET} and {rotated}"
    assert redactor_for(config).text(leaked) == (
        f"server said: {ERIN_TOKEN}, then [redacted] and [redacted]"
    )
    with open_store(config) as store:
        assert redactor_for(config, store).text(leaked) == (
            "server said: [redacted], then [redacted] and [redacted]"
        )
    report = run_once(config, today=day(1), clock=lambda: NOW)
    assert report.redactor.text(leaked) == "server said: [redacted], then [redacted] and [redacted]"
    # The command line's log filter and error messages know them too.
    result = CliRunner().invoke(
        main,
        ["explain", "--config", str(store_readers), "--subscriber", ERIN_TOKEN, "--paper", "x"],
    )
    assert (
        result.exit_code == 2 and ERIN_TOKEN not in result.output and "[redacted]" in result.output
    )
