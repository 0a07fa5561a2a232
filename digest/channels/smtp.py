"""The ``email`` channel over SMTP: one connection for the whole run, honest about failures.

A digest counts as sent only when the server answered 250 to its DATA. What the server
says decides what happens next:

- 4xx, a dropped connection or a timeout *before* the message's final "." was sent:
  temporary. Retried with backoff within the run, then left pending for the next run.
- No answer *after* the final "." (the connection dropped, or the 250 came after the
  timeout): the server may well have the message. It is not sent again in this run; the
  delivery is recorded as "unknown" and the next run sends it once more, with the same
  Message-ID (see DeliveryUnknown and the store's ``mark_unknown``).
- 5xx: permanent for this run. The digest is marked failed with the server's own reason
  and the run goes on with the next subscriber; the next run tries again. A 5xx to RCPT
  (RecipientRefused) is a bounce: counted, it marks the address bouncing after
  ``[email] bounce_runs`` runs in a row (see digest.bounces).
- A server that cannot be reached or refuses the login fails every email of the run at
  once (no retry storm) and says why.
- A server that fails slowly (hangs, keeps saying 4xx) may cost the run at most
  ``failure_budget_seconds`` of failures; then the run stops trying it and the remaining
  digests stay pending (DeliveryDeferred).

The transaction is driven command by command (MAIL, RCPT, DATA), not through
``sendmail``, so that where it failed is known; after any failure inside it the
connection is reset (RSET) or dropped, so the next reader starts clean. Addresses that
need it (``jürgen@example.org``) go out with SMTPUTF8; a server without it fails that
reader only.

The password comes from the environment variable named by ``password_env`` and appears
in no log, report or error message.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import smtplib
import ssl
import time
from collections.abc import Callable
from email.utils import parseaddr
from pathlib import Path
from typing import NoReturn

from email_validator import EmailNotValidError, validate_email

from digest.breaker import FailureBudget
from digest.channels.base import DeliveryContext
from digest.config import EmailSettings, SubscriberSettings
from digest.errors import DeliveryDeferred, DeliveryError, DeliveryUnknown, RecipientRefused
from digest.models import Digest
from digest.render.email import RenderedEmail

log = logging.getLogger("digest")

_LINE_BREAK = re.compile(rb"\r\n|\n|\r")
_LEADING_DOT = re.compile(rb"^\.", re.MULTILINE)


class _Temporary(Exception):
    """A failure worth retrying: 4xx, a dropped connection, a timeout (before the "." )."""


class _Unreachable(_Temporary):
    """The server could not be reached at all; if it persists, the run stops trying."""


class _Unanswered(Exception):
    """The whole message was sent and no reply came: the server may have it."""


def wire_address(address: str) -> str:
    """The form of ``address`` for MAIL FROM / RCPT TO: ASCII when it can be (an
    internationalised domain in its xn-- form), else UTF-8, which needs SMTPUTF8."""
    try:
        found = validate_email(address, check_deliverability=False, globally_deliverable=False)
    except EmailNotValidError:
        return address  # checked when the config was read; the server has the last word
    return found.ascii_email or found.normalized


def dot_stuffed(body: bytes) -> bytes:
    """The message as DATA sends it: CRLF line breaks, a leading "." doubled (RFC 5321
    4.5.2), and the final "." line that ends it."""
    lines = _LEADING_DOT.sub(b"..", _LINE_BREAK.sub(b"\r\n", body))
    if not lines.endswith(b"\r\n"):
        lines += b"\r\n"
    return lines + b".\r\n"


class SmtpChannel:
    name = "email"

    def __init__(
        self,
        settings: EmailSettings,
        config_folder: Path,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.folder = config_folder
        self.sleep = sleep
        self.clock = clock
        self.budget = FailureBudget(settings.failure_budget_seconds)
        self._connection: smtplib.SMTP | None = None
        self._down: str | None = None  # set once the server proved unreachable this run

    @property
    def server(self) -> str:
        return f"{self.settings.host}:{self.settings.effective_port}"

    def deliver(
        self, digest: Digest, subscriber: SubscriberSettings, context: DeliveryContext
    ) -> str:
        message = context.email(digest, subscriber)
        reply = self.send(message, subscriber.email)
        return f"{subscriber.email} via {self.server} ({reply})"

    def send(self, message: RenderedEmail, recipient: str) -> str:
        """Send one message to one recipient; return the server's acceptance, or raise."""
        if self._down:
            raise DeliveryError(self._down)
        attempts = self.settings.retries + 1
        for attempt in range(1, attempts + 1):
            self._within_budget()
            started = self.clock()
            try:
                return self._send_once(message, recipient)
            except _Unanswered as exc:
                self._drop_connection()
                self.budget.charge(self.server, self.clock() - started)
                raise DeliveryUnknown(
                    f"{self.server} was sent the whole message for {recipient} but did not "
                    f"confirm it: {exc}"
                ) from None
            except DeliveryError:
                self._reset()
                raise
            except _Temporary as exc:
                reason = str(exc)
                unreachable = isinstance(exc, _Unreachable)
                self._drop_connection()
                self.budget.charge(self.server, self.clock() - started)
            if attempt == attempts:
                self._out_of_retries(recipient, reason, attempts, unreachable=unreachable)
            self._within_budget()
            delay = min(
                self.settings.retry_backoff * 2 ** (attempt - 1), self.budget.left(self.server)
            )
            log.warning(
                "SMTP %s: %s; retry %d of %d in %.0fs",
                self.server,
                reason,
                attempt,
                attempts - 1,
                delay,
            )
            self.sleep(delay)
            self.budget.charge(self.server, delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _out_of_retries(
        self, recipient: str, reason: str, attempts: int, *, unreachable: bool
    ) -> NoReturn:
        """The last attempt failed too. A server never reached fails the rest of the run's
        emails at once; one that answered leaves this digest pending for the next run."""
        if unreachable:
            self._fail(
                f"{reason} (tried {attempts} times)",
                "check [email] host and port; the digests stay pending for the next run",
            )
        raise DeliveryError(
            f"{self.server} did not take the message for {recipient}: {reason} "
            f"(temporary; tried {attempts} times)",
            hint="the digest stays pending and is sent on the next run",
        )

    def _within_budget(self) -> None:
        """Raise DeliveryDeferred once the server's failures have cost the run its budget."""
        if self.budget.exhausted(self.server):
            verdict = self.budget.refuse(self.server)
            raise DeliveryDeferred(
                f"{verdict} ([email] failure_budget_seconds = "
                f"{self.settings.failure_budget_seconds:g})"
            )

    def _send_once(self, message: RenderedEmail, recipient: str) -> str:
        """One SMTP transaction. Failures before the final "." raise _Temporary (or
        DeliveryError for a permanent refusal); no answer after it raises _Unanswered."""
        connection = self._connect()
        envelope = wire_address(
            parseaddr(self.settings.envelope_from or self.settings.from_address)[1]
        )
        to = wire_address(recipient)
        try:
            connection.ehlo_or_helo_if_needed()  # done by hand for tls; extensions known after
            options = self._mail_options(connection, envelope, to)
            code, text = connection.mail(envelope, options)
            if code != 250:
                raise self._classify(code, text, f"refused the sender {envelope}")
            code, text = connection.rcpt(to)
            if code not in (250, 251):
                raise self._classify(
                    code, text, f"refused the recipient {recipient}", recipient=True
                )
            code, text = connection.docmd("DATA")
            if code != 354:
                raise self._classify(code, text, "refused the message")
            connection.send(dot_stuffed(message.as_bytes()))
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise _Temporary(
                f"the connection was lost while sending ({exc or type(exc).__name__})"
            ) from None
        except smtplib.SMTPResponseException as exc:  # EHLO refused
            raise self._classify(exc.smtp_code, exc.smtp_error, "answered") from None
        except UnicodeError as exc:  # an address the connection cannot encode
            raise DeliveryError(
                f"{self.server}: cannot send to {recipient}: {exc}",
                hint="check the subscriber's address",
            ) from None
        try:
            code, text = connection.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise _Unanswered(f"{exc or type(exc).__name__}") from None
        if code != 250:
            raise self._classify(code, text, "refused the message")
        return "accepted"

    def _mail_options(self, connection: smtplib.SMTP, envelope: str, to: str) -> list[str]:
        """SMTPUTF8 when an address needs it; a server without it fails this reader only."""
        if envelope.isascii() and to.isascii():
            return []
        if not connection.has_extn("smtputf8"):
            raise DeliveryError(
                f"{self.server} does not offer SMTPUTF8, which the address "
                f"{to if not to.isascii() else envelope} needs",
                hint="use a mail server that offers SMTPUTF8, or an ASCII address; "
                "the other subscribers are not affected",
            )
        return ["SMTPUTF8"]

    def _classify(
        self, code: int, text: bytes | str, what: str, *, recipient: bool = False
    ) -> Exception:
        """A reply as the failure it is: temporary (4xx), a refused address (5xx to
        RCPT, ``recipient``), or another permanent refusal."""
        reason = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        said = f"{self.server} {what}: {code} {' '.join(reason.split())}"
        if 400 <= code < 500:
            return _Temporary(said)
        if recipient:
            return RecipientRefused(said)
        return DeliveryError(
            said,
            hint="the server refused it permanently; check the address, then the next run retries",
        )

    def _connect(self) -> smtplib.SMTP:
        if self._connection is not None:
            return self._connection
        settings = self.settings
        host, port = settings.host or "", settings.effective_port
        context = ssl.create_default_context(
            cafile=str(self._resolve(settings.ca_file)) if settings.ca_file else None
        )
        try:
            if settings.security == "tls":
                connection: smtplib.SMTP = smtplib.SMTP_SSL(
                    host, port, timeout=settings.timeout, context=context
                )
            else:
                connection = smtplib.SMTP(host, port, timeout=settings.timeout)
                connection.ehlo()
                if settings.security == "starttls":
                    if not connection.has_extn("starttls"):
                        connection.close()
                        self._fail(
                            f"{self.server} does not offer STARTTLS",
                            'use security = "tls" (port 465), or "none" for a local relay',
                        )
                    connection.starttls(context=context)
                    connection.ehlo()
            if settings.username:
                connection.login(settings.username, self._password())
        except (ssl.SSLError, ssl.CertificateError) as exc:
            self._fail(
                f"TLS with {self.server} failed: {exc}", "check [email] security, port and ca_file"
            )
        except smtplib.SMTPAuthenticationError as exc:
            self._fail(
                f"{self.server} refused the login of {settings.username}: {exc.smtp_code}",
                "check [email] username and the password in the environment variable",
            )
        except smtplib.SMTPNotSupportedError:
            self._fail(f"{self.server} does not offer a login", "remove [email] username")
        except (OSError, smtplib.SMTPException) as exc:
            raise _Unreachable(
                f"cannot reach the mail server {self.server}: {exc or type(exc).__name__}"
            ) from None
        self._connection = connection
        return connection

    def _fail(self, message: str, hint: str) -> NoReturn:
        self._down = message
        raise DeliveryError(message, hint=hint)

    def _password(self) -> str:
        name = self.settings.password_env
        if not name:
            return ""
        password = os.environ.get(name)
        if password is None:
            self._fail(
                f"the SMTP password variable {name} is not set",
                f"export {name}=... in the environment that runs paper-digest",
            )
        return password or ""

    def _resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else self.folder / path

    def _reset(self) -> None:
        """After a refusal inside a transaction: RSET, so the next reader starts clean; a
        connection that cannot even do that is dropped."""
        if self._connection is None:
            return
        try:
            code, _text = self._connection.rset()
        except (OSError, smtplib.SMTPException):
            code = 0
        if code != 250:
            self._drop_connection()

    def _drop_connection(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(OSError):
                self._connection.close()
            self._connection = None

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._connection.quit()
            self._connection = None
