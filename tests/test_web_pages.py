"""The reader pages as a reader meets them, through `digest serve` (a real waitress server),
with their mails read back from a real SMTP server and the store read directly."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

import httpx
import pytest
from web_site import HOSTILE_TITLE, extract_link, running_site

from conftest import day
from digest.readers import email_key

GENEROUS = "signups_per_client_per_hour = 1000\nposts_per_client_per_minute = 1000\n"


@pytest.fixture
def site(make_config, seeds, monkeypatch):
    with running_site(make_config, seeds, monkeypatch, web=GENEROUS) as running:
        yield running


def sign_up(site, address, keywords="mamba\nlinear attention", **fields):
    return site.submit("/subscribe", {"email": address, "keywords": keywords} | fields)


def test_sign_up_confirm_and_get_the_next_digest(site, seeds):
    form = site.client.get("/subscribe")
    assert form.status_code == 200
    assert 'name="email"' in form.text and 'name="keywords"' in form.text

    answer = sign_up(site, "dana@example.org", cadence="weekly", weekday="mon")
    assert answer.status_code == 200
    assert "Check your inbox" in answer.text
    with site.store() as store:
        reader = store.get_subscriber("dana@example.org")
    assert reader is not None and reader.status == "pending"
    assert reader.settings.channels == ("email",)
    assert reader.settings.keywords == ("mamba", "linear attention")
    assert (reader.state.cadence, reader.state.weekday) == ("weekly", "mon")

    [mail] = site.mails_to("dana@example.org")
    assert mail["Subject"] == "Confirm your paper digest subscription"
    assert "mamba" not in str(mail.items())  # nothing the visitor typed is in a header
    assert mail.get_body(("html",)) is not None
    confirm = site.path(extract_link(mail, "confirm"))

    page = site.client.get(confirm)  # what a mail scanner's prefetch does
    assert page.status_code == 200
    assert site.status("dana@example.org") == "pending"

    done = site.submit(confirm, {})
    assert done.status_code == 200
    assert "/manage/" in done.text
    with site.store() as store:
        reader = store.get_subscriber("dana@example.org")
    assert reader.status == "active" and reader.confirmed_at is not None

    store_reader_daily(site, "dana@example.org")
    shutil.copy(seeds[0], site.folder / "inbox" / "day1.txt")
    report = site.run(day(1))
    assert report.subscribers[reader.name].delivered > 0
    assert site.mails_to("dana@example.org")[-1]["Subject"].startswith("Paper digest for")


def store_reader_daily(site, address):
    """A weekly reader made daily, so that the run of any day serves it."""
    with site.store() as store:
        store.update_subscriber(address, {"cadence": "daily", "weekday": None}, site.clock())


def test_form_errors_are_shown_by_their_field_with_the_input_kept_and_escaped(site):
    answer = sign_up(site, "<script>x</script>", keywords='mamba\n"unterminated')
    assert answer.status_code == 400
    assert "<script>x</script>" not in answer.text
    assert "&lt;script&gt;x&lt;/script&gt;" in answer.text  # kept, escaped
    assert 'id="email-error"' in answer.text and 'id="keywords-error"' in answer.text
    assert "line 2" in answer.text  # which keyword is wrong
    weekly = sign_up(site, "eve@example.org", cadence="weekly")
    assert weekly.status_code == 400 and 'id="weekday-error"' in weekly.text
    with site.store() as store:
        assert store.list_subscribers() == []
    assert site.smtp.messages == []


def test_sign_up_is_open_to_the_configured_domains_only(make_config, seeds, monkeypatch):
    web = GENEROUS + 'signup_domains = ["lab.example.org"]\n'
    with running_site(make_config, seeds, monkeypatch, web=web) as site:
        outside = sign_up(site, "mallory@elsewhere.example")
        assert outside.status_code == 400 and "@lab.example.org" in outside.text
        inside = sign_up(site, "ann@ai.lab.example.org")
        assert inside.status_code == 200
        assert site.status("ann@ai.lab.example.org") == "pending"
        assert site.status("mallory@elsewhere.example") is None


def test_pages_answer_only_when_configured(make_config, seeds, monkeypatch):
    with running_site(make_config, seeds, monkeypatch, web=GENEROUS, signup="off") as site:
        missing = site.not_found_body()
        off = site.client.get("/subscribe")
        assert (off.status_code, off.content) == (404, missing)
        manage = site.client.get(site.path(site.links.manage(site.key("carol"))))
        assert manage.status_code == 200  # the other pages stay


def test_without_a_secret_no_reader_page_exists(make_config, tmp_path, monkeypatch):
    from digest.config import load_config
    from digest.serve import make_app

    monkeypatch.delenv("DIGEST_TEST_WEB_SECRET", raising=False)
    config = load_config(make_config(extra='[web]\nsignup = "open"\n'))
    assert make_app(config).pages is None  # every path goes to the output folder's 404


def test_a_pending_reader_signing_up_again_gets_a_new_confirmation_and_profile(site):
    sign_up(site, "dana@example.org", keywords="mamba")
    site.clock.advance(minutes=11)  # past [web] mail_interval_minutes
    sign_up(site, "dana@example.org", keywords="diffusion")
    with site.store() as store:
        reader = store.get_subscriber("dana@example.org")
    assert reader.status == "pending" and reader.settings.keywords == ("diffusion",)
    first, second = site.mails_to("dana@example.org")
    assert extract_link(first, "confirm") != extract_link(second, "confirm")


def test_an_unsubscribed_reader_may_sign_up_again_and_must_confirm(site):
    name = site.add_reader("dana@example.org", status="unsubscribed")
    answer = sign_up(site, "dana@example.org")
    assert answer.status_code == 200
    assert site.status(name) == "pending"
    [mail] = site.mails_to("dana@example.org")
    site.submit(site.path(extract_link(mail, "confirm")), {})
    assert site.status(name) == "active"


@pytest.mark.parametrize("address", ["dana@example.org", "CAROL@example.org"])
def test_a_subscribed_reader_is_not_changed_and_gets_its_manage_link(site, address):
    if address.startswith("dana"):
        site.add_reader(address, keywords=["mamba"])
    answer = sign_up(site, address, keywords="something else")
    assert answer.status_code == 200
    with site.store() as store:
        reader = store.get_subscriber(address)
        stored = store.list_subscribers()
    if reader is not None:
        assert reader.status == "active" and reader.settings.keywords == ("mamba",)
    else:  # the config reader stays the config's alone
        assert stored == []
    [mail] = site.mails_to(address.lower())
    assert mail["Subject"] == "Your paper digest subscription"
    manage = site.client.get(site.path(extract_link(mail, "manage")))
    assert manage.status_code == 200


def test_manage_validates_and_saves_the_whole_profile(site):
    name = site.add_reader(
        "dana@example.org",
        keywords=["mamba"],
        channels=["email", "feed"],
        feed_token="feed-token-0123456789abcdef",
    )
    manage = site.path(site.links.manage(site.key(name)))
    page = site.client.get(manage)
    assert page.status_code == 200
    assert f"/feeds/{name}.atom?token=feed-token-0123456789abcdef" in page.text
    assert "/ratings/" in page.text
    assert "Europe/Berlin" in page.text  # the zones to choose from

    bad = site.submit(
        manage,
        {"keywords": "mamba^x", "max_papers": "ten", "channels": ["email"], "send_hour": "7"},
    )
    assert bad.status_code == 400
    assert 'id="keywords-error"' in bad.text and 'id="max_papers-error"' in bad.text
    none = site.submit(manage, {"keywords": "mamba", "send_hour": "7"})
    assert none.status_code == 400 and 'id="channels-error"' in none.text
    with site.store() as store:
        assert store.get_subscriber(name).settings.keywords == ("mamba",)

    good = site.submit(
        manage,
        {
            "keywords": "state space model\nmamba^2",
            "exclude": "survey",
            "authors": "Albert Gu",
            "categories": "cs.LG",
            "max_papers": "7",
            "cadence": "weekly",
            "weekday": "fri",
            "timezone": "Europe/Berlin",
            "send_hour": "8",
            "channels": ["email", "page"],
        },
    )
    assert good.status_code == 200 and "Saved." in good.text
    with site.store() as store:
        reader = store.get_subscriber(name)
    assert reader.settings.keywords == ("state space model", "mamba^2")
    assert reader.settings.exclude == ("survey",)
    assert reader.settings.authors == ("Albert Gu",)
    assert reader.settings.categories == ("cs.LG",)
    assert reader.settings.max_papers == 7
    assert reader.settings.channels == ("email", "page")
    assert (reader.state.cadence, reader.state.weekday) == ("weekly", "fri")
    assert (reader.state.timezone, reader.state.send_hour) == ("Europe/Berlin", 8)


def test_saving_the_form_keeps_a_channel_it_does_not_offer(site):
    """The form offers email, feed and page; a markdown channel (set by the admin or an
    import) is shown as kept, and saving changes the offered ones only."""
    name = site.add_reader("dana@example.org", keywords=["mamba"], channels=["email", "markdown"])
    manage = site.path(site.links.manage(site.key(name)))
    page = site.client.get(manage)
    assert "Also markdown, set by the site's admin: saving keeps it." in page.text
    saved = site.submit(manage, {"keywords": "mamba", "send_hour": "7", "channels": ["page"]})
    assert saved.status_code == 200 and "Saved." in saved.text
    with site.store() as store:
        assert store.get_subscriber(name).settings.channels == ("page", "markdown")
    # Markdown alone is still somewhere to go: no offered channel ticked is fine then.
    with site.store() as store:
        store.update_subscriber(name, {"channels": ["markdown"]}, datetime.now(UTC))
    alone = site.submit(manage, {"keywords": "mamba", "send_hour": "7"})
    assert alone.status_code == 200
    with site.store() as store:
        assert store.get_subscriber(name).settings.channels == ("markdown",)


def test_pause_and_resume(site):
    name = site.add_reader("dana@example.org")
    manage = site.path(site.links.manage(site.key(name)))
    site.submit(manage, {"action": "pause"})
    assert site.status(name) == "paused"
    site.submit(manage, {"action": "resume"})
    assert site.status(name) == "active"


def test_a_config_reader_sees_its_settings_read_only_and_may_leave_and_come_back(site):
    key = site.key("carol")
    manage = site.path(site.links.manage(key))
    page = site.client.get(manage)
    assert "managed by the site's admin" in page.text
    assert 'name="keywords"' not in page.text
    unsubscribe = site.path(site.links.unsubscribe(key))
    refused = site.submit(manage, {"keywords": "mamba", "channels": ["email"]}, form=unsubscribe)
    assert refused.status_code == 403

    done = site.submit(unsubscribe, {})
    assert done.status_code == 200 and "/manage/" in done.text
    with site.store() as store:
        assert store.opted_out() == {email_key("carol@example.org"): "unsubscribed"}
    site.submit(manage, {"action": "resume"})
    with site.store() as store:
        assert store.opted_out() == {}


def test_unsubscribe_get_changes_nothing_post_unsubscribes_and_the_next_run_sends_nothing(
    site, seeds
):
    leaving = site.add_reader("dana@example.org")
    site.add_reader("erin@example.org")
    page = site.path(site.links.unsubscribe(site.key(leaving)))
    assert site.client.get(page).status_code == 200
    assert site.status(leaving) == "active"
    done = site.submit(page, {})
    assert done.status_code == 200 and "/manage/" in done.text
    assert site.status(leaving) == "unsubscribed"
    again = site.submit(page, {})  # idempotent
    assert again.status_code == 200 and site.status(leaving) == "unsubscribed"

    shutil.copy(seeds[0], site.folder / "inbox" / "day1.txt")
    assert site.run(day(1)).ok
    assert site.mails_to("erin@example.org")  # the run did send
    assert site.mails_to("dana@example.org") == []


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_rfc_8058_one_click_unsubscribes_without_cookies(site, seeds, encoding):
    leaving = site.add_reader("dana@example.org")
    staying = site.add_reader("erin@example.org")
    url = site.links.unsubscribe(site.key(leaving))
    body = {"List-Unsubscribe": "One-Click"}
    for _ in range(2):  # idempotent
        if encoding == "urlencoded":
            answer = httpx.post(url, data=body)
        else:
            answer = httpx.post(url, files={"List-Unsubscribe": (None, "One-Click")})
        assert answer.status_code == 200
        assert "location" not in answer.headers and "set-cookie" not in answer.headers
        assert len(answer.content) < 100
    assert site.status(leaving) == "unsubscribed"

    shutil.copy(seeds[0], site.folder / "inbox" / "day1.txt")
    report = site.run(day(1))
    assert report.subscribers[staying].delivered > 0
    assert leaving not in report.subscribers
    assert site.mails_to("dana@example.org") == []


def test_one_click_for_a_config_reader_is_an_opt_out(site):
    url = site.links.unsubscribe(site.key("carol"))
    answer = httpx.post(url, data={"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200
    with site.store() as store:
        assert store.opted_out() == {email_key("carol@example.org"): "unsubscribed"}


def test_rating_get_shows_the_paper_post_records_the_last_vote_and_clear_undoes(site):
    paper = site.add_hostile_paper()
    key = site.key("carol")
    up = site.path(site.links.rate(key, paper, "up"))
    down = site.path(site.links.rate(key, paper, "down"))
    page = site.client.get(up)
    assert page.status_code == 200
    assert HOSTILE_TITLE not in page.text and "&lt;script&gt;" in page.text
    with site.store() as store:
        assert store.votes_of(["carol"]) == {}  # a GET votes nothing

    assert site.submit(up, {}).status_code == 200
    done = site.submit(down, {}, form=up)
    assert "Clear this rating" in done.text
    with site.store() as store:
        assert store.votes_of(["carol"]) == {"carol": {paper: -1}}
        [rating] = store.ratings_of("carol")
    assert rating.source == "web"

    ratings = site.path(site.links.ratings(key))
    listed = site.client.get(ratings)
    assert "Less like this" in listed.text and "https://arxiv.org/abs/2603.99999" in listed.text
    assert "&lt;script&gt;" in listed.text and HOSTILE_TITLE not in listed.text
    cleared = site.submit(ratings, {"paper": str(paper)})
    assert cleared.status_code == 200 and "No ratings yet" in cleared.text
    with site.store() as store:
        assert store.votes_of(["carol"]) == {}

    site.submit(up, {})
    site.submit(site.path(site.links.rate_base(key, paper) + "/clear"), {}, form=up)
    with site.store() as store:
        assert store.votes_of(["carol"]) == {}


@pytest.mark.parametrize("transport", ["files", "maildir"])
def test_sign_up_mails_go_through_the_configured_transport(make_config, transport):
    from datetime import UTC, datetime, timedelta
    from email import message_from_bytes
    from email.policy import default
    from pathlib import Path

    from digest.config import load_config
    from digest.render.environment import make_environment
    from digest.web.mailer import send_one
    from digest.web.mails import CONFIRM_SUBJECT, confirmation_mail

    extra = f'[email]\ntransport = "{transport}"\nmaildir = "Maildir"\n'
    config = load_config(make_config(extra=extra))
    now = datetime(2026, 3, 13, 9, 0, tzinfo=UTC)
    message = confirmation_mail(
        make_environment(),
        config.email,
        "dana@example.org",
        confirm_url="https://digest.example.org/confirm/t0ken",
        expires=now + timedelta(hours=48),
        site="https://digest.example.org",
        now=now,
    )
    where = Path(send_one(config, message, "dana@example.org", now))
    assert where.parent.name == ("new" if transport == "maildir" else "_signup")
    sent = message_from_bytes(where.read_bytes(), policy=default)
    assert sent["Subject"] == CONFIRM_SUBJECT and sent["To"] == "dana@example.org"
    text = sent.get_body(("plain",)).get_content()
    html = sent.get_body(("html",)).get_content()
    assert "https://digest.example.org/confirm/t0ken" in text
    assert 'href="https://digest.example.org/confirm/t0ken"' in html
    assert "style=" in html  # the digest's CSS, inlined for mail clients
