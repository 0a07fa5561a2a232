"""The ``email`` channel over SMTP: one connection for the whole run, honest about failures.

A digest counts as sent only when the server answered 250 to its DATA. What the server
says decides what happens next:

- 4xx (and a dropped connection or a timeout): temporary. Retried with backoff within
  the run, then left pending for the next run.
- 5xx: permanent for this run. The digest is marked failed with the server's own reason
  and the run goes on with the next subscriber; the next run tries again.
- A server that cannot be reached or refuses the login fails every email of the run at
  once (no retry storm) and says why.

The password comes from the environment variable named by ``password_env`` and appears
in no log, report or error message.
"""

from __future__ import annotations

import contextlib
import logging
import os
import smtplib
import ssl
import time
from collections.abc import Callable
from email.utils import parseaddr
from pathlib import Path

from digest.channels.base import DeliveryContext
from digest.config import EmailSettings, SubscriberSettings
from digest.errors import DeliveryError
from digest.models import Digest
from digest.render.email import RenderedEmail

log = logging.getLogger("digest")


class _Temporary(Exception):
    """A failure worth retrying: 4xx, a dropped connection, a timeout."""


class _Unreachable(_Temporary):
    """The server could not be reached at all; if it persists, the run stops trying."""


class SmtpChannel:
    name = "email"

    def __init__(
        self,
        settings: EmailSettings,
        config_folder: Path,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.folder = config_folder
        self.sleep = sleep
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
            try:
                return self._send_once(message, recipient)
            except _Temporary as exc:
                reason = str(exc)
                unreachable = isinstance(exc, _Unreachable)
                self._drop_connection()
            if attempt == attempts:
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
            delay = self.settings.retry_backoff * 2 ** (attempt - 1)
            log.warning(
                "SMTP %s: %s; retry %d of %d in %.0fs",
                self.server,
                reason,
                attempt,
                attempts - 1,
                delay,
            )
            self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _send_once(self, message: RenderedEmail, recipient: str) -> str:
        connection = self._connect()
        envelope = parseaddr(self.settings.envelope_from or self.settings.from_address)[1]
        try:
            refused = connection.sendmail(envelope, [recipient], message.as_bytes())
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = exc.recipients.get(recipient, (0, b"refused"))
            raise self._classify(code, text, f"refused the recipient {recipient}") from None
        except smtplib.SMTPSenderRefused as exc:
            raise self._classify(
                exc.smtp_code, exc.smtp_error, f"refused the sender {envelope}"
            ) from None
        except smtplib.SMTPDataError as exc:
            raise self._classify(exc.smtp_code, exc.smtp_error, "refused the message") from None
        except (smtplib.SMTPServerDisconnected, TimeoutError, ConnectionError) as exc:
            raise _Temporary(
                f"the connection was lost while sending ({exc or type(exc).__name__})"
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise self._classify(exc.smtp_code, exc.smtp_error, "answered") from None
        if refused:  # some recipients refused, others accepted: with one recipient, a failure
            code, text = refused.get(recipient, (0, b"refused"))
            raise self._classify(code, text, f"refused the recipient {recipient}")
        return "accepted"

    def _classify(self, code: int, text: bytes | str, what: str) -> Exception:
        reason = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        said = f"{self.server} {what}: {code} {' '.join(reason.split())}"
        if 400 <= code < 500:
            return _Temporary(said)
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

    def _fail(self, message: str, hint: str) -> None:
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
