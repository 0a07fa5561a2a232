"""The two mails the sign-up form sends: a confirmation link for a new (or pending)
reader, and the manage link for one who is subscribed already.

Pure: settings, links and a clock in, an ``EmailMessage`` out. Each has a fixed subject
and no text a visitor typed in any header (only the address, validated, in To); its
bodies come from ``web/mail_*.txt.j2`` and ``.html.j2``, the HTML in the style of the
digest email with its CSS inlined.
"""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any

from jinja2 import Environment

from digest.config import EmailSettings
from digest.render.inline import inline_each

CONFIRM_SUBJECT = "Confirm your paper digest subscription"
MANAGE_SUBJECT = "Your paper digest subscription"


def confirmation_mail(
    env: Environment,
    settings: EmailSettings,
    to: str,
    *,
    confirm_url: str,
    expires: datetime,
    site: str,
    now: datetime,
) -> EmailMessage:
    """The mail that asks the address's owner to confirm (double opt-in)."""
    values = {"confirm_url": confirm_url, "expires": f"{expires:%Y-%m-%d %H:%M}", "site": site}
    return _mail(env, settings, to, "confirm", CONFIRM_SUBJECT, values, now)


def manage_mail(
    env: Environment,
    settings: EmailSettings,
    to: str,
    *,
    manage_url: str,
    unsubscribe_url: str,
    site: str,
    now: datetime,
) -> EmailMessage:
    """The mail a subscribed reader gets instead of a confirmation: its manage link."""
    values = {"manage_url": manage_url, "unsubscribe_url": unsubscribe_url, "site": site}
    return _mail(env, settings, to, "manage", MANAGE_SUBJECT, values, now)


def _mail(
    env: Environment,
    settings: EmailSettings,
    to: str,
    kind: str,
    subject: str,
    values: dict[str, Any],
    now: datetime,
) -> EmailMessage:
    heading = subject
    text = env.get_template(f"web/mail_{kind}.txt.j2").render(**values)
    html = env.get_template(f"web/mail_{kind}.html.j2").render(heading=heading, **values)
    message = EmailMessage(policy=SMTP)
    message["From"] = settings.from_address
    message["To"] = to
    if settings.reply_to:
        message["Reply-To"] = settings.reply_to
    message["Subject"] = subject
    message["Date"] = format_datetime(now)
    domain = parseaddr(settings.from_address)[1].rpartition("@")[2] or "paper-digest.invalid"
    message["Message-ID"] = make_msgid("signup", domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    message.add_alternative(inline_each(html), subtype="html")
    return message
