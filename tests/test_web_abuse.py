"""The reader pages against hostile visitors, through `digest serve` (a real waitress
server): bad tokens, forged forms, floods of sign-ups, address probing, oversized input;
and what every page must carry (security headers, no script) or keep out of the logs."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import httpx
import pytest
from web_site import SECRET, extract_link, running_site

from digest.serve import redact
from digest.tokens import Signer


@pytest.fixture
def site(make_config, seeds, monkeypatch):
    with running_site(make_config, seeds, monkeypatch) as running:
        yield running


def snapshot(site):
    """Everything a page could change."""
    with site.store() as store:
        return (
            [r.to_json() for r in store.list_subscribers()],
            store.votes_of(["carol", *[r.name for r in store.list_subscribers()]]),
            store.opted_out(),
        )


def altered(url: str, at: int = -1) -> str:
    """The link with one character of its token changed (the last by default, whose low
    bits base64 does not use: the token must still not verify)."""
    where = len(url) + at if at < 0 else at
    return url[:where] + ("A" if url[where] != "A" else "B") + url[where + 1 :]


def test_bad_tokens_are_the_404_of_an_unknown_path_and_change_nothing(site):
    missing = site.not_found_body()
    pending = site.add_reader("dana@example.org", status="pending")
    removed = site.add_reader("gone@example.org")
    paper = site.paper_id()
    key, gone_key = site.key(pending), site.key(removed)
    signer, links = site.links.signer, site.links
    with site.store() as store:
        store.remove_subscriber(removed)
    confirm = links.confirm(key, site.clock() + timedelta(hours=1))
    expired = links.confirm(key, site.clock() - timedelta(seconds=1))
    bad = [
        "/manage/forged.token",
        "/manage/" + "A" * 700,
        site.path(altered(links.manage(key))),
        site.path(altered(confirm)),
        site.path(altered(confirm, len(site.base) + len("/confirm/") + 3)),  # the payload
        site.path(expired),
        f"/unsubscribe/{signer.sign('manage', key)}",  # a token of another purpose
        f"/manage/{signer.sign('unsubscribe', key)}",
        f"/confirm/{signer.sign('manage', key)}",
        f"/ratings/{signer.sign('rate', key, str(paper))}",
        f"/rate/{signer.sign('ratings', key)}/up",
        site.path(links.rate(key, 987654321, "up")),  # no such paper
        site.path(links.rate(key, paper, "sideways")),
        site.path(links.manage(gone_key)),  # a removed reader
        site.path(links.unsubscribe(gone_key)),
        f"/manage/{signer.sign('manage', 'no-such-key')}",
        f"/rate/{signer.sign('rate', key, 'x' * 20)}/up",
    ]
    before = snapshot(site)
    token = site.csrf("/subscribe")
    for path in bad:
        answers = [
            site.client.get(path),
            site.client.post(path, data={"csrf_token": token, "action": "pause"}),
        ]
        if path.startswith("/unsubscribe/"):  # RFC 8058's post needs no CSRF token
            answers.append(httpx.post(site.base + path, data={"List-Unsubscribe": "One-Click"}))
        for answer in answers:
            assert (answer.status_code, answer.content) == (404, missing), path
    assert snapshot(site) == before


def test_get_of_confirm_unsubscribe_and_rate_links_changes_nothing(site):
    pending = site.add_reader("dana@example.org", status="pending")
    active = site.add_reader("erin@example.org")
    paper = site.paper_id()
    links = site.links
    before = snapshot(site)
    for url in (
        links.confirm(site.key(pending), site.clock() + timedelta(hours=1)),
        links.unsubscribe(site.key(active)),
        links.rate(site.key(active), paper, "up"),
        links.rate(site.key(active), paper, "down"),
        links.manage(site.key(active)),
    ):
        for _ in range(3):  # a mail scanner may fetch a link more than once
            assert httpx.get(url).status_code == 200
            assert httpx.head(url).status_code == 200
    assert snapshot(site) == before


def test_confirmation_links_expire(site):
    site.submit("/subscribe", {"email": "dana@example.org", "keywords": ""})
    [mail] = site.mails_to("dana@example.org")
    confirm = site.path(extract_link(mail, "confirm"))
    token = site.csrf(confirm)
    site.clock.advance(hours=48, seconds=1)  # [web] confirm_hours
    assert site.client.get(confirm).status_code == 404
    assert site.client.post(confirm, data={"csrf_token": token}).status_code == 404
    assert site.status("dana@example.org") == "pending"


def test_fifty_sign_ups_for_one_address_in_a_minute_send_at_most_three_mails(
    make_config, seeds, monkeypatch
):
    web = "mail_interval_minutes = 0\n"  # only the daily limit holds them back
    with running_site(make_config, seeds, monkeypatch, web=web) as site:
        answers = set()
        for n in range(50):
            client = site.new_client(ip=f"203.0.113.{n + 1}")  # many clients: no 429
            answer = site.submit(
                "/subscribe", {"email": "victim@example.org", "keywords": "x"}, client
            )
            answers.add((answer.status_code, answer.text))
            site.clock.advance(seconds=1)
        assert len(answers) == 1 and next(iter(answers))[0] == 200
        assert len(site.smtp.for_recipient("victim@example.org")) == 3
        site.clock.advance(hours=24)
        site.submit("/subscribe", {"email": "victim@example.org"}, site.new_client("192.0.2.9"))
        assert len(site.smtp.for_recipient("victim@example.org")) == 4
        with site.store() as store:
            assert store.count_events() < 50 * 3  # old events are pruned


def test_one_mail_per_interval_to_an_address(site):
    for n in range(5):
        site.submit("/subscribe", {"email": "victim@example.org"}, site.new_client(f"192.0.2.{n}"))
        site.clock.advance(minutes=1)
    assert len(site.smtp.for_recipient("victim@example.org")) == 1
    site.clock.advance(minutes=10)  # [web] mail_interval_minutes
    site.submit("/subscribe", {"email": "victim@example.org"}, site.new_client("192.0.2.99"))
    assert len(site.smtp.for_recipient("victim@example.org")) == 2


def test_a_client_posting_too_many_sign_ups_gets_429(make_config, seeds, monkeypatch):
    web = "signups_per_client_per_hour = 3\n"
    with running_site(make_config, seeds, monkeypatch, web=web) as site:
        codes = [
            site.submit("/subscribe", {"email": f"a{n}@example.org"}).status_code for n in range(5)
        ]
        assert codes == [200, 200, 200, 429, 429]
        assert site.status("a3@example.org") is None
        other = site.new_client("192.0.2.50")
        assert site.submit("/subscribe", {"email": "b@example.org"}, other).status_code == 200
        site.clock.advance(hours=1)
        assert site.submit("/subscribe", {"email": "a9@example.org"}).status_code == 200


def test_forwarded_addresses_count_only_from_trusted_proxies(make_config, seeds, monkeypatch):
    web = "signups_per_client_per_hour = 2\n"
    with running_site(make_config, seeds, monkeypatch, web=web, proxies=0) as site:
        codes = [
            site.submit(
                "/subscribe", {"email": f"a{n}@example.org"}, site.new_client(ip)
            ).status_code
            for n, ip in enumerate(("192.0.2.1", "192.0.2.2", "192.0.2.3"))
        ]
        assert codes == [200, 200, 429]  # one client, whatever X-Forwarded-For claims


def test_a_client_posting_too_fast_gets_429(make_config, seeds, monkeypatch):
    web = "posts_per_client_per_minute = 4\n"
    with running_site(make_config, seeds, monkeypatch, web=web) as site:
        up = site.path(site.links.rate(site.key("carol"), site.paper_id(), "up"))
        codes = [site.submit(up, {}).status_code for _ in range(6)]
        assert codes == [200, 200, 200, 200, 429, 429]
        site.clock.advance(minutes=1)
        assert site.submit(up, {}).status_code == 200


def test_a_post_without_or_with_a_wrong_csrf_token_is_refused_and_changes_nothing(site):
    active = site.add_reader("dana@example.org")
    paper = site.paper_id()
    key = site.key(active)
    posts = [
        ("/subscribe", {"email": "new@example.org", "keywords": "x"}),
        (site.path(site.links.unsubscribe(key)), {}),
        (site.path(site.links.manage(key)), {"action": "pause"}),
        (site.path(site.links.rate(key, paper, "up")), {}),
        (site.path(site.links.ratings(key)), {"paper": str(paper)}),
    ]
    mine = site.csrf("/subscribe")
    stranger = site.new_client("192.0.2.77")
    theirs = site.csrf("/subscribe", stranger)
    before = snapshot(site)
    for path, data in posts:
        for token in (None, "", "forged", theirs, mine + "x"):
            sent = data if token is None else data | {"csrf_token": token}
            answer = site.client.post(path, data=sent)
            assert answer.status_code == 403, (path, token)
        no_cookie = httpx.post(site.base + path, data=data | {"csrf_token": mine})
        assert no_cookie.status_code == 403
    assert snapshot(site) == before
    assert site.smtp.messages == []


@pytest.mark.parametrize(
    "case", ["new", "pending", "active", "paused", "unsubscribed", "config", "throttled"]
)
def test_known_and_unknown_addresses_get_the_same_answer(make_config, seeds, monkeypatch, case):
    with running_site(make_config, seeds, monkeypatch) as site:
        address = "carol@example.org" if case == "config" else "dana@example.org"
        if case in ("pending", "active", "paused", "unsubscribed"):
            site.add_reader(address, status=case)
        if case == "throttled":
            site.submit("/subscribe", {"email": address}, site.new_client("192.0.2.200"))
        answer = site.submit("/subscribe", {"email": address, "keywords": "mamba"})
        reference = site.submit(
            "/subscribe", {"email": "someone.new@example.org"}, site.new_client("192.0.2.201")
        )
        assert (answer.status_code, answer.text) == (reference.status_code, reference.text)
        assert answer.status_code == 200
        assert _headers(answer) == _headers(reference)


def _headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k not in ("date", "set-cookie")}


def test_a_mail_that_cannot_be_sent_is_a_generic_503(site):
    site.smtp.rcpt_replies["dana@example.org"] = ["550 5.1.1 no such user"]
    answer = site.submit("/subscribe", {"email": "dana@example.org"})
    assert answer.status_code == 503
    assert "try again later" in answer.text and "dana" not in answer.text


def test_every_field_has_a_length_limit(site):
    long_address = "a" * 250 + "@example.org"
    checks = [
        ({"email": long_address}, "email", "at most 254"),
        ({"email": "d@example.org", "keywords": "k" * 2001}, "keywords", "at most 2000"),
        ({"email": "d@example.org", "keywords": "k\n" * 51}, "keywords", "at most 50 lines"),
        ({"email": "d@example.org", "timezone": "Z" * 65}, "timezone", "at most 64"),
    ]
    for data, field, message in checks:
        answer = site.submit("/subscribe", data)
        assert answer.status_code == 400, field
        error = re.search(rf'id="{field}-error">([^<]*)<', answer.text)
        assert error and message in error.group(1), (field, answer.text)
    huge = site.client.post(
        "/subscribe",
        data={"csrf_token": site.csrf("/subscribe"), "email": "d@example.org", "x": "y" * 40000},
    )
    assert huge.status_code == 413
    with site.store() as store:
        assert store.list_subscribers() == []
    assert site.smtp.messages == []


CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def test_every_page_carries_the_security_headers_and_no_script_or_inline_style(site):
    active = site.add_reader("dana@example.org")
    pending = site.add_reader("erin@example.org", status="pending")
    key, paper, links = site.key(active), site.paper_id(), site.links
    pages = [
        "/subscribe",
        site.path(links.manage(key)),
        site.path(links.unsubscribe(key)),
        site.path(links.rate(key, paper, "up")),
        site.path(links.ratings(key)),
        site.path(links.confirm(site.key(pending), site.clock() + timedelta(hours=1))),
    ]
    for path in [*pages, "/manage/forged"]:
        answer = site.client.get(path)
        headers = answer.headers
        assert headers["content-security-policy"] == CSP, path
        assert headers["x-frame-options"] == "DENY"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["cache-control"] == "no-store"
        assert "<script" not in answer.text and "style=" not in answer.text
        assert "<style" not in answer.text
    cookie = httpx.get(site.base + "/subscribe").headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    css = site.client.get("/static/web.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


def test_the_cookie_is_secure_when_the_site_is_https(make_config, seeds, monkeypatch):
    with running_site(
        make_config, seeds, monkeypatch, base_url="https://digest.example.org"
    ) as site:
        cookie = httpx.get(site.base + "/subscribe").headers["set-cookie"]
        assert cookie.startswith("__Host-digest_csrf=")
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_tokens_in_paths_never_reach_the_logs(site, caplog):
    caplog.set_level(logging.DEBUG, logger="digest")
    key = site.key("carol")
    urls = [
        site.links.manage(key),
        site.links.unsubscribe(key),
        site.links.ratings(key),
        site.links.rate(key, site.paper_id(), "up"),
    ]
    for url in urls:
        assert httpx.get(url).status_code == 200
    logged = "\n".join(record.getMessage() for record in caplog.records)
    for url in urls:
        token = site.path(url).split("/")[2]
        assert token not in logged
    for route in ("manage", "unsubscribe", "ratings", "rate"):
        assert f"/{route}/REDACTED" in logged
    trace = 'File "x", in view\nValueError: bad /confirm/abc.DEF-_ and /rate/xyz.1/up'
    assert redact(trace) == (
        'File "x", in view\nValueError: bad /confirm/REDACTED and /rate/REDACTED/up'
    )


def test_links_signed_with_a_rotated_out_secret_work_until_it_is_removed(
    make_config, seeds, monkeypatch
):
    old = Signer([SECRET])
    new_secret = "the-new-web-secret-0123456789abcdef"
    with running_site(make_config, seeds, monkeypatch, secret=f"{new_secret} {SECRET}") as site:
        key = site.key("carol")
        assert site.client.get(f"/manage/{old.sign('manage', key)}").status_code == 200
        assert site.links.manage(key) != f"{site.base}/manage/{old.sign('manage', key)}"
    with running_site(make_config, seeds, monkeypatch, secret=new_secret) as site:
        assert site.client.get(f"/manage/{old.sign('manage', key)}").status_code == 404
        assert site.client.get(site.path(site.links.manage(key))).status_code == 200
