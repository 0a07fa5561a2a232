"""The errors paper-digest raises on purpose, each with a hint that says the fix.

Every error a user can cause or meet derives from :class:`DigestError`; the CLI prints
``message`` and ``hint`` and exits non-zero, and never shows a traceback for them.

    DigestError
    ├── ConfigError        the config file is missing, is not TOML, or a key is wrong
    │   └── SubscriberError   a store reader's details are wrong, or it cannot be found
    ├── SourceError        a source could not be read (file, URL, status)
    │   └── ParseError     a listing was read but is not in any format we understand
    ├── StoreError         the state store cannot be opened or is from a newer version
    │   └── LockedError    another run holds the store's run lock
    └── DeliveryError      a channel refused a digest (file system, mail server)
        ├── DeliveryUnknown   the message went out but no confirmation came back
        ├── DeliveryDeferred  the channel gave up on its server for this run
        └── RecipientRefused  the mail server refused the address for good (5xx to RCPT)

Anything else that escapes is a bug: the CLI logs it with a traceback.
"""

from __future__ import annotations


class DigestError(Exception):
    """Base class: ``message`` says what went wrong, ``hint`` what to do about it."""

    hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(DigestError):
    """The configuration cannot be used. The message names the file and the key."""

    hint = "fix the config file; `digest check --config FILE` lists every problem"


class SubscriberError(ConfigError):
    """A reader given on the command line or in an import file is invalid, unknown, or
    managed by the config. ``problems`` lists each one as ``key: what was expected``."""

    hint = "see `digest subscribers --help`; readers in the config file are edited there"

    def __init__(
        self, message: str, *, hint: str | None = None, problems: list[str] | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.problems = problems or [message]


class SourceError(DigestError):
    """A source failed as a whole (unreadable file, unreachable server, bad status)."""

    hint = "the other sources were still read; this one is retried on the next run"


class ParseError(SourceError):
    """A listing's content is not in a format we can read. Names the file or URL."""

    hint = "check that the file is a listing capture, a daily_papers JSON or an arXiv feed"


class StoreError(DigestError):
    """The state store cannot be used."""

    hint = "check `[store] path` in the config and that its folder is writable"


class LockedError(StoreError):
    """Another run holds the store's lock: two runs must not deliver at the same time."""

    hint = "wait for the other run to finish; the lock is released when its process ends"


class DeliveryError(DigestError):
    """A channel did not accept a digest. Nothing is recorded as delivered."""

    hint = "the digest stays pending and is delivered again on the next run"


class DeliveryUnknown(DeliveryError):
    """The whole message reached the server, which then gave no answer (the connection
    dropped, or the reply came too late). It may have been delivered: sending it again at
    once could mean a copy for every retry, so it is recorded as "unknown" instead."""

    hint = "not sent again in this run; the next run sends it once more, with the same Message-ID"


class RecipientRefused(DeliveryError):
    """The mail server answered RCPT with a permanent refusal (5xx): the address does
    not take mail. Counted as a bounce; after ``[email] bounce_runs`` runs in a row the
    address is marked bouncing and nothing more is sent to it."""

    hint = "check the address; the next run retries, and a delivery it takes clears the count"


class DeliveryDeferred(DeliveryError):
    """The channel stopped trying its server for the rest of the run: its failures cost
    more than the run's failure budget. The digest was not tried and stays pending."""

    hint = "the digest stays pending and is delivered on the next run"
