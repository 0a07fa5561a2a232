"""The email's CSS inlined into its templates once: the same email as inlining each one,
and each email inlined in full wherever a template makes that the only exact way."""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from test_render import NOW, sample_digest, view

from digest.config import EmailSettings
from digest.models import Digest, Paper, Scored, StoredPaper
from digest.render import inline
from digest.render.context import digest_view
from digest.render.email import build_message, render_html
from digest.render.environment import builtin_templates, make_environment
from digest.render.inline import email_html, inline_each, same_document

BUILTIN_CSS = (builtin_templates() / "style.css").read_text(encoding="utf-8")


def reference(env, digest_view_) -> str:
    """The email as css-inline makes it from the finished HTML: what inlining once must equal."""
    return inline_each(env.get_template("email.html.j2").render(digest=digest_view_))


def user_templates(tmp_path: Path, files: dict[str, str]) -> Path:
    """A user's templates folder holding ``files`` (name: text)."""
    folder = tmp_path / "my-templates"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def views():
    """Digests that take every branch of the built-in email template."""
    sample = view()
    yield sample
    yield replace(sample, shown=1)  # "more papers did not fit", with links
    yield digest_view(sample_digest(), generated_at=NOW, base_url=None)  # no page or feed
    papers = tuple(
        Scored(StoredPaper(i, Paper(title=f"Plain paper {i}", abstract=""), date(2026, 3, 13)), 1)
        for i in range(3)
    )
    yield digest_view(Digest("bob", date(2026, 3, 13), 1, papers, 3, 2), generated_at=NOW)
    long = Paper(title="Attention", abstract="attention is long. " * 80)
    many = (Scored(StoredPaper(9, long, date(2026, 3, 13)), 2.0),)
    yield digest_view(Digest("carol", date(2026, 3, 13), 1, many, 1, 3), generated_at=NOW)


def test_builtin_templates_are_inlined_once_and_give_the_same_emails():
    env = make_environment(None)
    renderer = email_html(env)
    assert renderer.inlined is not None
    for digest_view_ in views():
        html = render_html(env, digest_view_)
        assert same_document(html, reference(env, digest_view_))
        assert html == renderer.inlined.render(digest=digest_view_)
    assert renderer.inlined is not None  # the first email's check passed


def test_inlined_emails_are_not_parsed_again(monkeypatch):
    env = make_environment(None)
    render_html(env, view())  # the one email checked against a full inlining

    def refuse(html: str) -> str:
        raise AssertionError("an email was inlined after its templates were")

    monkeypatch.setattr(inline, "_EACH_EMAIL", type("Refuse", (), {"inline": staticmethod(refuse)}))
    for digest_view_ in views():
        html = render_html(env, digest_view_)
        assert '<div class="paper"' in html and 'style="background: #ffffff;' in html


def test_the_stylesheet_keeps_only_its_at_rules_and_marks_are_styled():
    html = render_html(make_environment(None), view())
    style = re.search(r"<style>(.*?)</style>", html, re.DOTALL)[1]
    assert "@media (prefers-color-scheme: dark)" in style and "@media (max-width: 480px)" in style
    assert ".paper { background: #ffffff" not in style  # plain rules are in the tags now
    mark_rule = re.search(r"^mark \{ (.*?) \}$", BUILTIN_CSS, re.MULTILINE)[1]
    assert html.count('<mark style="') == html.count("<mark") > 0
    assert f'<mark style="{mark_rule.replace("; ", ";")}">' in html


def test_a_users_stylesheet_is_inlined_once_too(tmp_path):
    css = BUILTIN_CSS.replace(".paper { background: #ffffff;", ".paper { background: #fafaff;")
    env = make_environment(user_templates(tmp_path, {"style.css": css}))
    html = render_html(env, view())
    assert email_html(env).inlined is not None
    assert 'class="paper" id="paper-1" data-ref="2603.01234" style="background: #fafaff;' in html
    assert same_document(html, reference(env, view()))


def test_a_changed_template_file_is_inlined_again(tmp_path):
    folder = user_templates(tmp_path, {"style.css": BUILTIN_CSS})
    env = make_environment(folder)
    assert "#fafaff" not in render_html(env, view())
    changed = BUILTIN_CSS.replace(".paper { background: #ffffff;", ".paper { background: #fafaff;")
    (folder / "style.css").write_text(changed, encoding="utf-8")
    later = time.time() + 10  # a new modification time, however coarse the file system's
    os.utime(folder / "style.css", (later, later))
    html = render_html(env, view())
    assert email_html(env).inlined is not None
    assert 'data-ref="2603.01234" style="background: #fafaff;' in html
    assert same_document(html, reference(env, view()))


def test_a_selector_across_templates_is_caught_by_the_first_email(tmp_path, caplog):
    # .container is in email.html.j2, the card's h2 in _paper.html.j2: styled apart, the
    # card's template alone does not match; the first email shows the difference.
    css = BUILTIN_CSS + "\n.container .paper h2 { color: #ff0000; }\n"
    env = make_environment(user_templates(tmp_path, {"style.css": css}))
    assert email_html(env).inlined is not None
    with caplog.at_level(logging.INFO, logger="digest"):
        first = render_html(env, view())
    assert email_html(env).inlined is None
    assert "inlining each email" in caplog.text
    assert first == reference(env, view())
    assert re.search(r'<h2 style="[^"]*color: #ff0000', first)
    assert render_html(env, view()) == first


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        (
            {"style.css": BUILTIN_CSS + "\n.paper:first-child { border-width: 3px; }\n"},
            "a selector depends on siblings or values (':first-')",
        ),
        (
            {"style.css": BUILTIN_CSS + '\n.paper[data-ref^="2603"] { color: red; }\n'},
            "a selector depends on siblings or values ('[')",
        ),
        (
            {
                "email.html.j2": '{% from "_paper.html.j2" import paper_card %}\n'
                "<html><head><style>{% include 'style.css' %}</style></head>\n"
                '<body>\n<div class="container"{% if digest.hidden %} data-cut{% endif %}>\n'
                "{% for p in digest.papers %}{{ paper_card(p) }}{% endfor %}</div></body></html>"
            },
            "email.html.j2, line 4: <div> has a Jinja tag inside it",
        ),
        (
            {
                "email.html.j2": "<html><head><style>.card { color: #123456; }</style></head>\n"
                '<body>{% for p in digest.papers %}\n<div class="card {{ p.ref|e }}">'
                "{{ p.title }}</div>{% endfor %}</body></html>"
            },
            "email.html.j2, line 3: <div> has a class chosen by a Jinja tag",
        ),
        (
            {
                "_paper.html.j2": "{% macro paper_card(p, abstract_limit=None) %}\n"
                '<div class="paper" style="border: 0">{{ p.title }}</div>\n{% endmacro %}'
            },
            "_paper.html.j2, line 2: <div> has a style attribute of its own",
        ),
        (
            {
                "email.html.j2": "<html><head><style>p { color: #111; }</style></head><body>"
                '{% if digest.count > 999 %}{% include "missing.html.j2" %}{% endif %}'
                "<p>{{ digest.count }}</p></body></html>"
            },
            "missing.html.j2: TemplateNotFound: missing.html.j2",
        ),
        (
            {
                "email.html.j2": "<html><head><style>p { color: #111; }</style>"
                "<style>{% if digest.count %}h1 { color: #222; }{% endif %}</style></head>"
                "<body><p>{{ digest.count }}</p></body></html>"
            },
            "2 <style> elements, where one is expected",
        ),
    ],
)
def test_templates_that_cannot_be_inlined_once_are_inlined_per_email(
    tmp_path, caplog, files, reason
):
    env = make_environment(user_templates(tmp_path, files))
    with caplog.at_level(logging.INFO, logger="digest"):
        renderer = email_html(env)
    assert renderer.inlined is None
    assert f"CSS inlined into each email, not into the templates: {reason}" in caplog.text
    html = render_html(env, view())
    assert html == reference(env, view())
    assert 'style="' in html


def test_a_template_extending_the_builtin_one_is_inlined_once(tmp_path):
    extending = '{% extends "default/email.html.j2" %}\n'
    env = make_environment(user_templates(tmp_path, {"email.html.j2": extending}))
    html = render_html(env, view())
    assert email_html(env).inlined is not None
    assert same_document(html, reference(env, view()))
    assert '<div class="container" style="max-width: 680px;' in html


def test_a_whole_message_carries_the_inlined_html():
    message = build_message(
        make_environment(None), view(), settings=EmailSettings(), to="a@example.org", now=NOW
    )
    html = message.message().get_body(("html",)).get_content().replace("\r\n", "\n")
    assert html == message.html
    assert same_document(html, reference(make_environment(None), view()))
