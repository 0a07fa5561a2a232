"""Render a digest as a complete email: multipart/alternative, plain text first, HTML last.

Pure: a view, settings and a fixed ``now`` in, a RenderedEmail out. Titles and abstracts
never reach a header (the subject carries only the date and a count), the HTML is
autoescaped with its CSS inlined for mail clients, and the Message-ID is derived from the
subscriber and the digest's date, so a resend is recognisable as the same digest.
"""

from __future__ import annotations

import base64
import binascii
import email
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr
from functools import lru_cache
from urllib.parse import quote

import numpy as np
from jinja2 import Environment

from digest.config import EmailSettings
from digest.render.context import DigestView
from digest.render.inline import email_html

# Gmail clips messages whose HTML passes about 102 KB; stay clear of it with room to spare.
MAX_HTML_BYTES = 100_000
_SUBJECT_LIMIT = 150


def render_html(env: Environment, view: DigestView) -> str:
    """The HTML part with its stylesheet inlined (media queries kept for dark mode)."""
    return email_html(env).render(digest=view)


def render_text(env: Environment, view: DigestView) -> str:
    return env.get_template("email.txt.j2").render(digest=view)


def parts_that_fit(
    count: int, size: Callable[[int, int], int], limit: int = MAX_HTML_BYTES
) -> list[int]:
    """How many papers each email of a digest carries, in digest order, where
    ``size(start, end)`` is the size of one email of the papers ``[start:end]``: each
    part as large as stays within ``limit``. Every paper is in one of the parts (a paper
    too large even alone makes a part of its own): a reader is never sent a digest that
    hides some of its papers.

    A digest that fits costs one measure; one that does not, about two a part: the first
    guess is in proportion to the size measured, then moved a paper at a time.
    """
    sizes: list[int] = []
    start = 0
    while start < count:
        whole = size(start, count)
        if whole <= limit:
            sizes.append(count - start)
            break
        end = start + max(1, min(count - start - 1, (count - start) * limit // whole))
        if size(start, end) <= limit:
            while end + 1 < count and size(start, end + 1) <= limit:
                end += 1
        else:
            while end - 1 > start and size(start, end - 1) > limit:
                end -= 1
            end = max(start + 1, end - 1)
        sizes.append(end - start)
        start = end
    return sizes


def html_size(html: str) -> int:
    """The size of an HTML part as Gmail counts it against its clipping limit: the
    decoded part, with CRLF line breaks."""
    return len(html.encode()) + html.count("\n")


def message_id(subscriber: str, view: DigestView, domain: str) -> str:
    """Deterministic: the same subscriber and digest always give the same Message-ID."""
    token = hashlib.sha256(subscriber.encode()).hexdigest()[:16]
    return f"<digest.{view.slug}.{token}@{domain}>"


def subject_line(template: str, view: DigestView) -> str:
    subject = template.format(
        date=view.date.isoformat(), count=view.count, subscriber=view.subscriber
    )
    subject = " ".join(subject.split())  # no line breaks, ever
    return subject if len(subject) <= _SUBJECT_LIMIT else subject[: _SUBJECT_LIMIT - 1] + "…"


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    """A finished email: its headers and its two bodies.

    ``as_bytes`` lays out the multipart/alternative itself, a fixed shape: the bodies are
    encoded in one call each (quoted-printable text, base64 HTML), where the stdlib's
    generator re-encodes a long body line by line and costs more than rendering it. The
    boundary starts with "=_", which neither encoding can produce, so it never occurs in a
    body. Headers are checked, encoded and folded by the stdlib's SMTP policy. ``message()``
    reads the bytes back with the stdlib parser.
    """

    headers: tuple[tuple[str, str], ...]  # (name, value), in order
    text: str
    html: str

    def __getitem__(self, name: str) -> str | None:
        found = [value for key, value in self.headers if key.lower() == name.lower()]
        return found[0] if found else None

    def as_bytes(self) -> bytes:
        text = binascii.b2a_qp(_lines(self.text).encode(), istext=True).replace(b"\n", b"\r\n")
        # Text is encoded in canonical form, CRLF line breaks (RFC 2045), like the stdlib.
        html = _base64_lines(_lines(self.html).replace("\n", "\r\n").encode())
        boundary = b"=_" + hashlib.sha256(text + html).hexdigest()[:40].encode()
        head = b"".join(header_line(name, value) for name, value in self.headers)
        return b"".join(
            (
                head,
                b"MIME-Version: 1.0\r\n",
                b'Content-Type: multipart/alternative; boundary="' + boundary + b'"\r\n\r\n',
                b"--" + boundary + b"\r\n",
                b'Content-Type: text/plain; charset="utf-8"\r\n',
                b"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
                text,
                b"\r\n--" + boundary + b"\r\n",  # the CRLF before "--" belongs to the boundary
                b'Content-Type: text/html; charset="utf-8"\r\n',
                b"Content-Transfer-Encoding: base64\r\n\r\n",
                html,
                b"\r\n--" + boundary + b"--\r\n",
            )
        )

    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.as_bytes(), policy=SMTP)
        assert isinstance(parsed, EmailMessage)
        return parsed


def _base64_lines(data: bytes) -> bytes:
    """Base64 in lines of 76 characters, each ending in CRLF (RFC 2045), laid out as rows
    of an array rather than line by line."""
    encoded = np.frombuffer(base64.b64encode(data), dtype=np.uint8)
    full, rest = divmod(len(encoded), 76)
    rows = np.empty((full, 78), dtype=np.uint8)
    rows[:, :76] = encoded[: full * 76].reshape(full, 76)
    rows[:, 76:] = (13, 10)
    tail = encoded[full * 76 :].tobytes() + b"\r\n" if rest else b""
    return rows.tobytes() + tail


def _lines(text: str) -> str:
    """Line breaks as "\\n" only, whatever the input used (a lone CR counts as one)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def build_message(
    env: Environment,
    view: DigestView,
    *,
    settings: EmailSettings,
    to: str,
    now: datetime,
    html: str | None = None,
) -> RenderedEmail:
    """The complete email of ``view``; ``html``: its HTML part, when already rendered."""
    html = render_html(env, view) if html is None else html
    domain = _domain(settings.from_address)
    headers = [("From", settings.from_address), ("To", to)]
    if settings.reply_to:
        headers.append(("Reply-To", settings.reply_to))
    headers += [
        ("Subject", subject_line(settings.subject, view)),
        ("Date", format_datetime(now)),
        ("Message-ID", message_id(view.subscriber, view, domain)),
        ("Auto-Submitted", "auto-generated"),
        ("List-Id", settings.list_id or f"Paper digest <paper-digest.{domain}>"),
    ]
    headers += unsubscribe_headers(settings, view.unsubscribe_url)
    for name, value in headers:
        header_line(name, value)  # a value the policy refuses fails here, not at sending
    return RenderedEmail(tuple(headers), render_text(env, view), html)


def unsubscribe_headers(settings: EmailSettings, one_click: str | None) -> list[tuple[str, str]]:
    """List-Unsubscribe (RFC 2369), with the signed one-click URL first when there is one
    (RFC 8058, and then List-Unsubscribe-Post too). The mailto's subject is "unsubscribe"
    and the URL's token, never the reader's name or address: whoever reads that mailbox
    can act on it (the token opens the reader's unsubscribe page), and nobody can forge it.
    """
    token = one_click.rpartition("/")[2] if one_click else ""
    request = quote(f"unsubscribe {token}".strip())
    mailto = f"<mailto:{_unsubscribe_address(settings)}?subject={request}>"
    if not one_click:
        return [("List-Unsubscribe", mailto)]
    return [
        ("List-Unsubscribe", f"<{one_click}>, {mailto}"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    ]


@lru_cache(maxsize=4096)  # most headers are the same in every email of a run
def header_line(name: str, value: str) -> bytes:
    """One header as it goes on the wire: parsed (so a line break or a malformed address
    is refused), encoded and folded by the stdlib's SMTP policy."""
    return SMTP.fold_binary(*SMTP.header_store_parse(name, value))


def _unsubscribe_address(settings: EmailSettings) -> str:
    _name, addr = parseaddr(
        settings.unsubscribe_mailto or settings.reply_to or settings.from_address
    )
    return addr


def _domain(address: str) -> str:
    _name, addr = parseaddr(address)
    return addr.rpartition("@")[2] or "paper-digest.invalid"
