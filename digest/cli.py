"""The ``digest`` command: thin click commands over the pipeline and the store.

Exit status: 0 everything succeeded; 1 the run finished but a source or a delivery
failed (see the report); 2 the command line or the config is wrong; 3 the store cannot
be used (including: another run holds its lock).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from datetime import date, datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from digest import __version__
from digest.config import CHANNELS, Config, SubscriberSettings, environment_problems, load_config
from digest.errors import ConfigError, DigestError, StoreError, SubscriberError
from digest.explain import describe, explain
from digest.pipeline import digest_date, open_store, run_once, utc_now
from digest.previews import PREVIEW_FORMATS, preview, send_test
from digest.progress import terminal_progress
from digest.reader_lookup import find_reader
from digest.readers import STATUSES, WEEKDAYS
from digest.report import RedactingFilter, Redactor, RunReport, redactor_for
from digest.scheduler import run_scheduler, schedule_of
from digest.serve import make_http_server, serve_until
from digest.store import StoreSummary

log = logging.getLogger("digest")

EXIT_FAILED, EXIT_CONFIG, EXIT_STORE = 1, 2, 3
# Until a config says otherwise: the store, feeds, pages and emails can be private, so
# other users of the machine must not read them.
PRIVATE_UMASK = 0o077

config_option = click.option(
    "--config",
    "-c",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default="config.toml",
    show_default=True,
    envvar="DIGEST_CONFIG",
    help="The config file (TOML). Also read from $DIGEST_CONFIG.",
)
date_option = click.option(
    "--date",
    "day",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="The digest date, YYYY-MM-DD. Default: today in the config's time zone.",
)


def fail(error: DigestError) -> NoReturn:
    """Print a DigestError as the user should see it and exit with its status."""
    redact = _redactor().text
    click.secho(f"error: {redact(error.message)}", fg="red", err=True)
    if error.hint:
        click.echo(f"hint: {redact(error.hint)}", err=True)
    sys.exit(
        EXIT_STORE
        if isinstance(error, StoreError)
        else EXIT_CONFIG
        if isinstance(error, ConfigError)
        else EXIT_FAILED
    )


def load(config_path: Path) -> Config:
    """The config, or exit with its problems.

    From here on, files get the config's ``[output] umask``, and its secrets are taken
    out of everything the command prints or logs.
    """
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        fail(exc)
    os.umask(config.output.umask_bits)
    redactor = _config_redactor(config)
    context = click.get_current_context(silent=True)
    if context is not None:
        context.find_root().ensure_object(dict)["redactor"] = redactor
    for handler in logging.getLogger("digest").handlers:
        handler.addFilter(RedactingFilter(redactor))
    return config


def _config_redactor(config: Config) -> Redactor:
    """The config's secrets, and the feed tokens of the readers its SQLite store keeps
    when there is one already (a command never creates a store to read them; a run's
    report adds those of any store)."""
    path = config.resolve(config.store.path)
    if not config.store.url and not config.store.url_env and path.is_file():
        try:
            with open_store(config) as store:
                return redactor_for(config, store)
        except DigestError:
            pass  # the command itself says what is wrong with the store
    return redactor_for(config)


def _redactor() -> Redactor:
    """The loaded config's redactor; before a config is loaded there is nothing to hide."""
    context = click.get_current_context(silent=True)
    options = context.find_root().obj if context is not None else None
    return (options or {}).get("redactor") or Redactor()


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = (
        logging.ERROR if quiet else [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S"))
    logger = logging.getLogger("digest")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="paper-digest")
@click.option("-v", "--verbose", count=True, help="Log progress (-v) or debug details (-vv).")
@click.option("-q", "--quiet", is_flag=True, help="Print only errors (for cron).")
@click.pass_context
def main(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """paper-digest: the new research papers you care about, once a day.

    Reads listings from your sources, keeps the papers you have not seen, ranks them
    against your keywords and delivers a digest by email, feed, web page or Markdown.
    Start with `digest check`, then `digest run`.
    """
    os.umask(PRIVATE_UMASK)
    _setup_logging(verbose, quiet)
    ctx.obj = {"quiet": quiet, "verbose": verbose}


@main.command()
@config_option
@date_option
@click.option("--dry-run", is_flag=True, help="Write the outputs but record nothing in the store.")
@click.option("--json", "as_json", is_flag=True, help="Print the run report as JSON on stdout.")
@click.option("--subscriber", "only", multiple=True, help="Only this subscriber (repeatable).")
def run(
    config_path: Path, day: datetime | None, dry_run: bool, as_json: bool, only: tuple[str, ...]
) -> None:
    """Run one digest now: ingest, pick the new papers, rank, render, deliver."""
    config = load(config_path)
    if only:  # names or addresses, of config or store readers
        only = tuple(
            _store_call(
                config, lambda store: [find_reader(config, store, ref).name for ref in only]
            )
        )
    _check_runnable(config, only)
    quiet = click.get_current_context().find_root().obj["quiet"]
    try:
        with terminal_progress(not (as_json or quiet)) as progress:
            report = run_once(
                config,
                today=day.date() if day else None,
                dry_run=dry_run,
                only=only or None,
                progress=progress,
                detail=as_json,
            )
    except DigestError as exc:
        fail(exc)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    elif not quiet:
        _print_report(report, config)
    sys.exit(0 if report.ok else EXIT_FAILED)


def _check_runnable(config: Config, names: tuple[str, ...]) -> None:
    """Each ``--subscriber`` is a config reader, or an active store reader (served now,
    whatever its schedule); else exit saying which is not."""
    missing = [name for name in names if all(s.name != name for s in config.subscribers)]
    if not missing:
        return
    readers = _store_call(config, lambda store: [store.get_subscriber(n) for n in missing])
    for name, reader in zip(missing, readers, strict=True):
        if reader is None:
            known = ", ".join(s.name for s in config.subscribers) or "none"
            fail(
                ConfigError(
                    f"{config.path}: no subscriber named {name!r} in the config "
                    f"(known: {known}) nor in the store",
                    hint="`digest subscribers list` shows every reader",
                )
            )
        if reader.status != "active":
            fail(
                ConfigError(
                    f"--subscriber {name}: the store reader is {reader.status}; "
                    "only active readers are served",
                    hint=f"`digest subscribers edit {name} --status active` serves it again",
                )
            )


@main.command()
@config_option
def check(config_path: Path) -> None:
    """Validate a config file and say what is wrong, without running anything."""
    config = load(config_path)
    problems = environment_problems(config)
    from digest.sources import build_sources
    from digest.sources.file import FileSource

    for source in build_sources(config):
        if isinstance(source, FileSource) and not source.matching_files():
            problems.append(f"source {source.name}: no file matches {source.pattern}")
    if config.templates and not config.resolve(config.templates).is_dir():
        problems.append(f"templates: {config.resolve(config.templates)} is not a folder")
    store_folder = config.resolve(config.store.path).parent
    if store_folder.exists() and not store_folder.is_dir():
        problems.append(f"store.path: {store_folder} is not a folder")
    click.echo(f"config: {config.path}")
    click.echo(f"  store:       {config.resolve(config.store.path)}")
    click.echo(f"  outputs:     {config.resolve(config.output.dir)}")
    click.echo(f"  time zone:   {config.timezone}")
    click.echo(f"  sources:     {', '.join(s.name for s in config.sources)}")
    click.echo(f"  subscribers: {', '.join(s.name for s in config.subscribers)}")
    for problem in problems:
        click.secho(f"error: {problem}", fg="red", err=True)
    if problems:
        sys.exit(EXIT_CONFIG)
    click.secho("config OK", fg="green")


@main.command(name="preview")
@config_option
@date_option
@click.option("--subscriber", "-s", required=True, help="Whose digest to render.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(PREVIEW_FORMATS),
    default="html",
    show_default=True,
    help="html (the email's HTML part), text, eml (the whole message) or markdown.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write it. Default: preview-SUBSCRIBER.EXT in the current folder.",
)
def preview_command(
    config_path: Path, day: datetime | None, subscriber: str, fmt: str, output: Path | None
) -> None:
    """Render one subscriber's next digest to a file, recording nothing."""
    config = load(config_path)
    extension = {"html": "html", "text": "txt", "eml": "eml", "markdown": "md"}[fmt]
    output = output or Path(f"preview-{subscriber}.{extension}")
    try:
        digest, content = preview(config, subscriber, fmt=fmt, today=day.date() if day else None)
    except DigestError as exc:
        fail(exc)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(content)
    click.echo(f"{len(digest.papers)} papers (of {digest.candidates} new) -> {output}")


host_option = click.option("--host", default=None, help="Address to listen on ([serve] host).")
port_option = click.option(
    "--port", type=int, default=None, help="Port to listen on ([serve] port)."
)


def _daemon_logging() -> None:
    """Long-running commands log their progress unless asked to be quiet."""
    options = click.get_current_context().find_root().obj
    if not options["quiet"] and not options["verbose"]:
        logging.getLogger("digest").setLevel(logging.INFO)


def _server_logging() -> None:
    """The HTTP server's own lines (an error in a request, the connection limit reached)
    go where ours go, in the same format, at the same level."""
    ours, server = logging.getLogger("digest"), logging.getLogger("waitress")
    server.handlers[:] = ours.handlers
    server.setLevel(ours.level)
    server.propagate = False


def _start_server(
    config: Config, host: str | None, port: int | None, stop: threading.Event
) -> threading.Thread:
    """Listen (or exit with a clear error) and serve in a thread until ``stop`` is set."""
    _server_logging()
    host, port = host or config.serve.host, port or config.serve.port
    try:
        server = make_http_server(config, host, port)
    except DigestError as exc:  # the reader pages' secret is missing or too short
        fail(exc)
    except OSError as exc:
        fail(
            DigestError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                hint="choose another --port",
            )
        )
    return serve_until(server, stop)


@main.command()
@config_option
@host_option
@port_option
def serve(config_path: Path, host: str | None, port: int | None) -> None:
    """Serve feeds, digest pages and /healthz over HTTP until stopped."""
    config = load(config_path)
    _daemon_logging()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server = _start_server(config, host, port, stop)
    stop.wait()
    server.join()
    log.info("server stopped")


@main.command()
@config_option
@click.option(
    "--serve", "with_server", is_flag=True, help="Also serve feeds and pages (digest serve)."
)
@host_option
@port_option
def schedule(config_path: Path, with_server: bool, host: str | None, port: int | None) -> None:
    """Run the digest on the [schedule] of the config, until SIGTERM or Ctrl-C."""
    config = load(config_path)
    _daemon_logging()
    try:
        schedule_of(config)
    except ConfigError as exc:
        fail(exc)
    stop = threading.Event()
    server = _start_server(config, host, port, stop) if with_server else None
    status = run_scheduler(config, stop=stop)
    if server is not None:
        server.join()
    sys.exit(status)


@main.command(name="explain")
@config_option
@date_option
@click.option("--subscriber", "-s", required=True, help="Whose profile to explain.")
@click.option(
    "--paper",
    "-p",
    "ref",
    required=True,
    help="An arXiv id, a title or words of one, or a report id.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the breakdown as JSON.")
def explain_command(
    config_path: Path, day: datetime | None, subscriber: str, ref: str, as_json: bool
) -> None:
    """Show why a paper was (or was not) chosen for a subscriber, point by point."""
    config = load(config_path)
    today = day.date() if day else digest_date(config, utc_now())
    try:
        found = explain(config, subscriber, ref, today)
    except DigestError as exc:
        fail(exc)
    if as_json:
        click.echo(json.dumps(_jsonable(found), indent=2, ensure_ascii=False))
        return
    click.echo("\n".join(describe(found)))


@main.command(name="feedback")
@config_option
@click.argument("subscriber", metavar="SUBSCRIBER")
@click.argument("paper", metavar="PAPER", required=False)
@click.argument("vote", type=click.Choice(["up", "down", "clear"]), required=False)
@click.option("--list", "as_list", is_flag=True, help="Print the subscriber's ratings instead.")
@click.option("--json", "as_json", is_flag=True, help="With --list: print them as JSON.")
def feedback_command(
    config_path: Path,
    subscriber: str,
    paper: str | None,
    vote: str | None,
    as_list: bool,
    as_json: bool,
) -> None:
    """Rate PAPER for SUBSCRIBER: up (more like this), down (less like this) or clear, as
    the links in a digest do; the last vote wins. SUBSCRIBER is a name or address, of the
    config or the store; PAPER an arXiv id (2401.12345, arXiv:2401.12345v2, its arxiv.org
    link), a title, or words of a title that fit no other paper. `digest feedback
    SUBSCRIBER --list` prints the ratings."""
    from digest.feedback import ratings_of, record_vote

    config = load(config_path)
    if as_list or as_json:
        if paper is not None:
            fail(DigestError("--list takes only SUBSCRIBER, not a paper or a vote"))
        try:
            name, found = ratings_of(config, subscriber)
        except DigestError as exc:
            fail(exc)
        _print_ratings(name, found, as_json)
        return
    if paper is None or vote is None:
        fail(
            DigestError(
                "give SUBSCRIBER PAPER and up, down or clear (or SUBSCRIBER --list)",
                hint="digest feedback alice 2401.12345 up",
            )
        )
    try:
        done = record_vote(config, subscriber, paper, vote, utc_now())
    except DigestError as exc:
        fail(exc)
    what = {1: "rated up", -1: "rated down", None: "cleared the rating of"}[done.vote]
    ref = done.paper.paper.arxiv_id or done.paper.paper.title
    click.echo(f"{done.subscriber}: {what} {ref} ({done.paper.paper.title})")


def _print_ratings(name: str, ratings: list[Any], as_json: bool) -> None:
    if as_json:
        records = [
            {
                "paper": r.arxiv_id or r.title,
                "arxiv_id": r.arxiv_id,
                "title": r.title,
                "vote": "up" if r.vote > 0 else "down",
                "source": r.source,
                "rated_at": r.rated_at.isoformat(),
            }
            for r in ratings
        ]
        click.echo(json.dumps({"subscriber": name, "ratings": records}, indent=2))
        return
    for r in ratings:
        vote = "up  " if r.vote > 0 else "down"
        click.echo(f"{vote} {r.rated_at:%Y-%m-%d} {r.arxiv_id or '-':<12} {r.title}")
    click.echo(f"{len(ratings)} ratings by {name}")


@main.command(name="send-test")
@config_option
@click.option("--to", "to", required=True, help="The address to send the sample digest to.")
def send_test_command(config_path: Path, to: str) -> None:
    """Send one sample digest through the configured email transport, to check a setup."""
    config = load(config_path)
    try:
        SubscriberSettings(name="send-test", email=to)
    except ValueError:
        fail(ConfigError(f"--to: expected one email address such as name@example.org, got {to!r}"))
    try:
        where = send_test(config, to)
    except DigestError as exc:
        fail(exc)
    click.echo(f"sample digest sent: {where}")


@main.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print the state as JSON.")
def state(config_path: Path, as_json: bool) -> None:
    """Show what the store holds: papers, each subscriber's deliveries, the last runs."""
    config = load(config_path)
    path = config.resolve(config.store.path)
    if not path.exists():
        fail(StoreError(f"{path}: no store yet", hint="`digest run` creates it"))
    try:
        with open_store(config) as store:
            summary = store.summary()
    except DigestError as exc:
        fail(exc)
    if as_json:
        click.echo(json.dumps(_jsonable(summary), indent=2))
        return
    click.echo(f"store: {summary.location} (schema {summary.schema_version})")
    click.echo(
        f"papers: {summary.papers} "
        f"({summary.papers_with_arxiv_id} with an arXiv id, {summary.keys} keys)"
    )
    click.echo("subscribers:")
    for sub in summary.subscribers:
        click.echo(
            f"  {sub.name:<16} delivered {sub.delivered_papers:>5}"
            f"  considered {sub.considered_papers:>5}  digests {sub.digests:>4}"
            f"  pending {sub.pending_deliveries}  last {sub.last_digest or '-'}"
        )
        if sub.unknown_deliveries or sub.unconfirmed_deliveries:
            click.echo(
                f"  {'':<16} outcome unknown {sub.unknown_deliveries} (sent once more next run)"
                f"  unconfirmed {sub.unconfirmed_deliveries} (sent twice, not sent again)"
            )
    _print_bounces(summary)
    click.echo("last runs:")
    for entry in summary.runs:
        dry = "  (dry run)" if entry["dry_run"] else ""
        click.echo(
            f"  #{entry['id']:<5} {entry['date']}  {entry['status']:<11}"
            f" started {entry['started_at']}{dry}"
        )


def _print_bounces(summary: StoreSummary) -> None:
    """The readers no longer sent mail, and the addresses a mail server refuses."""
    if summary.bouncing_readers:
        click.echo(f"bouncing store readers: {', '.join(summary.bouncing_readers)}")
    if summary.opted_out:
        counts = ", ".join(
            f"{count} {reason}" for reason, count in sorted(summary.opted_out.items())
        )
        click.echo(f"config readers opted out: {counts}")
    if summary.bounces:
        click.echo("addresses refused by the mail server (runs in a row):")
        for bounce in summary.bounces:
            address, runs, last = bounce["address"], bounce["runs"], bounce["last_at"]
            click.echo(
                f"  {address:<32} {runs:>3}  last {last:%Y-%m-%d %H:%M}  {bounce['last_reply']}"
            )


def _print_report(report: RunReport, config: Config) -> None:
    """The human summary of a run: per source and subscriber, and where the outputs are."""
    out = config.resolve(config.output.dir)
    redact = report.redactor.text  # errors quote servers, which may echo a secret
    dry = " (dry run: nothing recorded)" if report.dry_run else ""
    click.echo(f"Digest for {report.date.isoformat()}{dry}")
    for name, source in report.sources.items():
        click.echo(f"  source {name}: {source.papers} listings, {source.new} new papers")
        if source.error:
            click.secho(f"    error: {redact(source.error)}", fg="red")
        if source.stale:
            click.secho(
                "    stale: the listing has not been updated since the last run", fg="yellow"
            )
    for name, sub in report.subscribers.items():
        click.echo(
            f"  {name}: {sub.selected} papers chosen from {sub.candidates} new to them,"
            f" {sub.delivered} delivered"
        )
        for delivery in sub.deliveries:
            if delivery.status == "delivered":
                click.echo(f"    {delivery.channel:<8} {_relative(delivery.detail)}")
            else:
                status = delivery.status.upper()
                click.secho(
                    f"    {delivery.channel:<8} {status}: {redact(delivery.detail)}", fg="red"
                )
        if sub.error and not sub.deliveries:
            click.secho(f"    error: {redact(sub.error)}", fg="red")
    for line in report.gave_up():
        click.secho(f"  {redact(line)}", fg="red")
    if not any(sub.deliveries for sub in report.subscribers.values()):
        click.echo(f"Nothing new to deliver. Outputs are in {_relative(str(out))}")


def _relative(path: str) -> str:
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def _jsonable(value: Any) -> Any:
    from dataclasses import asdict, is_dataclass

    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable(asdict(value))
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if hasattr(value, "_asdict"):  # a named tuple (a Match) is an object, not a list
        return _jsonable(value._asdict())
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


# --- digest subscribers: readers kept in the store ---------------------------------------


@main.group(name="subscribers")
def subscribers_group() -> None:
    """Readers kept in the store: add, list, show, edit, remove, import, export.

    A run serves the config's [[subscribers]] and the store's active readers. The config
    wins: a name or address it defines is edited in the config, never here.
    """


def _reader_options(command: Any) -> Any:
    """The options add and edit share: the common fields, and --set for any field."""
    options = [
        click.option("--keyword", "keywords", multiple=True, help="A keyword (repeatable)."),
        click.option("--exclude", multiple=True, help="A term that leaves a paper out."),
        click.option("--author", "authors", multiple=True, help="An author who boosts a paper."),
        click.option("--category", "categories", multiple=True, help="An arXiv category."),
        click.option("--max-papers", type=int, default=None, help="Papers a digest at most."),
        click.option(
            "--channel",
            "channels",
            multiple=True,
            type=click.Choice(CHANNELS),
            help="A channel (repeatable). Default: email, feed, page.",
        ),
        click.option(
            "--cadence",
            type=click.Choice(["daily", "weekly"]),
            default=None,
            help="How often (stored now; the scheduler honours it later). Default: daily.",
        ),
        click.option(
            "--weekday", type=click.Choice(WEEKDAYS), default=None, help="The day, if weekly."
        ),
        click.option("--tz", "timezone", default=None, help="IANA time zone, e.g. Europe/Berlin."),
        click.option("--send-hour", type=int, default=None, help="Local hour to send, 0-23."),
        click.option(
            "--set",
            "assignments",
            multiple=True,
            metavar="KEY=VALUE",
            help="Any field (lists ';'-separated, interests as JSON); an empty VALUE resets it.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _changes(options: dict[str, Any]) -> dict[str, Any]:
    """The fields the options give: flags first, then --set (which may reset a field)."""
    from digest.reader_files import cell_value
    from digest.readers import FIELDS

    changes = {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in options.items()
        if key != "assignments" and value not in (None, ())
    }
    for assignment in options.get("assignments", ()):
        key, sep, text = assignment.partition("=")
        key = key.strip()
        if not sep or key not in FIELDS:
            fail(
                SubscriberError(
                    f"--set {assignment!r}: expected KEY=VALUE with KEY one of {', '.join(FIELDS)}"
                )
            )
        try:
            changes[key] = cell_value(key, text)
        except ValueError as exc:
            fail(SubscriberError(f"--set {key}: {exc}"))
    return changes


def _config_check(config: Config) -> Any:
    from digest.readers import check_against_config

    return lambda reader: check_against_config(reader.settings, config)


def _refuse_config_reader(config: Config, ref: str) -> None:
    from digest.readers import config_reader

    defined = config_reader(config, ref)
    if defined is not None:
        fail(
            SubscriberError(
                f"{ref}: subscriber {defined.name!r} is defined in {config.path} "
                "([[subscribers]]); edit it there",
                hint="the command line changes only the readers it keeps in the store",
            )
        )


def _store_call(config: Config, call: Any) -> Any:
    """Run ``call(store)`` on the config's store, turning its errors into exit statuses."""
    try:
        with open_store(config) as store:
            return call(store)
    except DigestError as exc:
        fail(exc)


@subscribers_group.command(name="add")
@config_option
@click.argument("email")
@click.option("--name", default=None, help="Its name (in file names and URLs). Default: r-...")
@click.option(
    "--status", type=click.Choice(["active", "pending"]), default="active", show_default=True
)
@_reader_options
def subscribers_add(config_path: Path, email: str, **options: Any) -> None:
    """Add a reader to the store; it is served from the next run if active."""
    config = load(config_path)
    values = {"email": email, **_changes(options)}
    _refuse_config_reader(config, email)
    reader = _store_call(
        config, lambda store: store.add_subscriber(values, utc_now(), check=_config_check(config))
    )
    click.echo(f"added {reader.name} <{reader.email}> ({reader.status})")


@subscribers_group.command(name="edit")
@config_option
@click.argument("ref", metavar="NAME|EMAIL")
@click.option("--email", default=None, help="A new address.")
@click.option("--status", type=click.Choice(STATUSES), default=None, help="A new status.")
@_reader_options
def subscribers_edit(config_path: Path, ref: str, **options: Any) -> None:
    """Change a store reader's fields; the others keep their values, and a list option
    (--keyword ...) replaces its list."""
    config = load(config_path)
    _refuse_config_reader(config, ref)
    changes = _changes(options)
    if not changes:
        fail(SubscriberError("nothing to change; give an option or --set KEY=VALUE"))
    reader = _store_call(
        config,
        lambda store: store.update_subscriber(ref, changes, utc_now(), check=_config_check(config)),
    )
    click.echo(f"updated {reader.name} <{reader.email}> ({reader.status})")


@subscribers_group.command(name="remove")
@config_option
@click.argument("ref", metavar="NAME|EMAIL")
@click.option("--purge", is_flag=True, help="Delete the reader instead of unsubscribing it.")
def subscribers_remove(config_path: Path, ref: str, purge: bool) -> None:
    """Unsubscribe a store reader (the next run sends it nothing), or --purge it."""
    config = load(config_path)
    _refuse_config_reader(config, ref)
    if purge:
        reader = _store_call(config, lambda store: store.remove_subscriber(ref))
        click.echo(f"deleted {reader.name} <{reader.email}>")
        return
    reader = _store_call(config, lambda store: store.set_status(ref, "unsubscribed", utc_now()))
    click.echo(f"unsubscribed {reader.name} <{reader.email}>")


def _all_readers(config: Config, status: str | None) -> list[dict[str, Any]]:
    """Config readers (always active) and store readers, as records for list and show."""
    found = [
        {"managed_by": "config", "status": "active"}
        | s.model_dump(mode="json", exclude_defaults=True)
        for s in config.subscribers
        if status in (None, "active")
    ]
    readers = _store_call(config, lambda store: store.list_subscribers(status))
    return found + [{"managed_by": "store"} | reader.to_json() for reader in readers]


@subscribers_group.command(name="list")
@config_option
@click.option("--status", type=click.Choice(STATUSES), default=None, help="Only these readers.")
@click.option("--json", "as_json", is_flag=True, help="Print them as JSON.")
def subscribers_list(config_path: Path, status: str | None, as_json: bool) -> None:
    """List the readers: the config's, then the store's in the order they were added."""
    config = load(config_path)
    records = _all_readers(config, status)
    if as_json:
        click.echo(json.dumps(records, indent=2, ensure_ascii=False))
        return
    for record in records:
        keywords = "; ".join(str(k) for k in record.get("keywords", []))
        keywords = keywords if len(keywords) <= 60 else keywords[:59] + "…"
        click.echo(
            f"{record['name']:<16} {record['status']:<12} {record['managed_by']:<6} "
            f"{record['email']}  {keywords}"
        )
    click.echo(f"{len(records)} readers")


@subscribers_group.command(name="show")
@config_option
@click.argument("ref", metavar="NAME|EMAIL")
@click.option("--json", "as_json", is_flag=True, help="Print it as JSON.")
def subscribers_show(config_path: Path, ref: str, as_json: bool) -> None:
    """Show one reader, from the config or the store, with every field set."""
    from digest.readers import config_reader

    config = load(config_path)
    defined = config_reader(config, ref)
    if defined is not None:
        record = {"managed_by": "config", "status": "active"} | defined.model_dump(
            mode="json", exclude_defaults=True
        )
    else:
        reader = _store_call(config, lambda store: store.get_subscriber(ref))
        if reader is None:
            fail(
                SubscriberError(
                    f"no reader {ref!r} in {config.path} or its store",
                    hint="`digest subscribers list` shows them",
                )
            )
        record = {"managed_by": "store"} | reader.to_json()
    if as_json:
        click.echo(json.dumps(record, indent=2, ensure_ascii=False))
        return
    for key, value in record.items():
        click.echo(f"{key + ':':<16} {json.dumps(value, ensure_ascii=False)}")


@subscribers_group.command(name="import")
@config_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--skip-bad", is_flag=True, help="Import the good rows even if some are bad.")
def subscribers_import(config_path: Path, file: Path, skip_bad: bool) -> None:
    """Add or update readers by address from a CSV (header row: email,keywords,...; lists
    ';'-separated) or JSON file (a list of objects). Every row is checked first; if one
    is bad, nothing is imported (unless --skip-bad)."""
    from digest.reader_files import import_file

    config = load(config_path)
    check = _config_check(config)
    done = _store_call(
        config,
        lambda store: import_file(store, file, utc_now(), check=check, skip_bad=skip_bad),
    )
    for problem in done.problems:
        click.secho(f"error: {problem}", fg="red", err=True)
    if not done.written:
        fail(
            SubscriberError(
                f"{file}: {done.bad_rows} of {done.rows} rows are bad; nothing was imported",
                hint="fix them, or import the good rows with --skip-bad",
            )
        )
    skipped = f", {done.bad_rows} bad rows skipped" if done.bad_rows else ""
    click.echo(
        f"imported {done.added + done.updated} readers from {file}: "
        f"{done.added} added, {done.updated} updated{skipped}"
    )
    if done.bad_rows:
        sys.exit(EXIT_FAILED)


@subscribers_group.command(name="export")
@config_option
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True
)
@click.option("--status", type=click.Choice(STATUSES), default=None, help="Only these readers.")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file. Default: standard output.",
)
def subscribers_export(
    config_path: Path, fmt: str, status: str | None, output: Path | None
) -> None:
    """Write the store's readers as `digest subscribers import` reads them."""
    from digest.reader_files import write_readers

    config = load(config_path)
    text = write_readers(_store_call(config, lambda store: store.list_subscribers(status)), fmt)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
