"""`digest schedule`: APScheduler fires the same run_once that `digest run` uses.

- One run at a time (``max_instances=1``), missed runs coalesced into one, and a run
  missed while the host slept still fires on wake within ``misfire_grace_minutes``.
- On start, a run missed while the process was down (a container restart) is made up at
  once (``catch_up``), so a daily digest is never silently skipped.
- The config is read again before each run, so edits apply without a restart; a broken
  edit is reported and the last good config is used.
- A crash inside a run is logged and the scheduler goes on; another process holding the
  store's lock makes this run skip, never deliver twice.
- SIGTERM and SIGINT let the run in progress finish, then the process exits 0.

Two jobs, never at the same time (one worker thread runs them in turn):

- the cron line's run serves the config's readers and every store reader that is due;
- a wake every ``WAKE_MINUTES`` (at :00, :15, :30 and :45 UTC, so zones offset by 30 or
  45 minutes are served at their local send hour too) runs for the store's readers
  alone, only when one of them is due (its send moment has come, or a delivery of its was
  never tried or never confirmed). A wake with nobody due does nothing: no ingest, no
  run recorded.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from digest.config import Config, ScheduleSettings, load_config
from digest.errors import ConfigError, DigestError, LockedError
from digest.pipeline import open_store, run_once
from digest.readers import run_subscribers
from digest.schedule_rules import cron_trigger, next_fire_times, previous_fire_time

log = logging.getLogger("digest")

JOB_ID = "digest"
WAKE_ID = "readers"
WAKE_MINUTES = 15


def schedule_of(config: Config) -> ScheduleSettings:
    if config.schedule is None:
        raise ConfigError(
            f"{config.path}: no [schedule] table",
            hint='add [schedule] with cron = "30 7 * * 1-5" (see config.example.toml)',
        )
    return config.schedule


def zone_of(config: Config) -> str:
    return schedule_of(config).timezone or config.timezone


NOT_RUN = object()  # what a wake returns when no reader was due


def run_guarded(what: str, next_one: str, run: Callable[[], object]) -> None:
    """Run one job and log how it ended; never raises, as the scheduler must outlive a
    failed or crashed run. ``run`` returns the run's report, or NOT_RUN when nothing was
    due."""
    try:
        report = run()
    except LockedError as exc:
        log.warning("%s skipped: %s", what, exc.message)
    except DigestError as exc:
        log.error("%s failed: %s", what, exc)
    except Exception:  # a bug in one run
        log.exception("%s crashed; %s will still happen", what, next_one)
    else:
        if report is not NOT_RUN:
            ok = getattr(report, "ok", True)
            log.info("%s finished%s", what, "" if ok else " with failures (see the report)")


class DigestJob:
    """The scheduled job: reload the config, run once, log what happened and what is next."""

    def __init__(self, config: Config, runner: Callable[[Config], object] = run_once) -> None:
        self.config = config
        self.runner = runner

    def __call__(self) -> None:
        self.config = self._reloaded()
        try:
            run_guarded("scheduled run", "the next one", lambda: self.runner(self.config))
        finally:
            self.log_next()

    def _reloaded(self) -> Config:
        try:
            return load_config(self.config.path)
        except ConfigError as exc:
            log.error("config not reloaded, using the last good one: %s", exc.message)
            return self.config

    def log_next(self) -> None:
        # Computed from the cron line, not asked of the scheduler: a run that ends while the
        # scheduler shuts down must not wait for the scheduler's locks.
        settings = schedule_of(self.config)
        upcoming = next_fire_times(settings.cron, zone_of(self.config), datetime.now(UTC), 1)
        if upcoming:
            log.info("next digest run at %s", upcoming[0].isoformat())


def store_readers_run(config: Config) -> object:
    """A run for the store's due readers alone (the config's are served on the cron)."""
    return run_once(config, config_readers=False)


def readers_due(config: Config, now: datetime) -> list[str]:
    """The store readers a run at ``now`` would serve: due, or owed deliveries a crash
    left (see ``readers.run_subscribers``)."""
    if not config.store.database_url and not Path(config.resolve(config.store.path)).exists():
        return []
    with open_store(config) as store:
        audience = run_subscribers(config, store, now, config_readers=False)
    return [s.name for s in audience.subscribers]


class ReadersWake:
    """The wake between cron runs: run for the store's readers when one is due."""

    def __init__(
        self,
        job: DigestJob,
        runner: Callable[[Config], object] = store_readers_run,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.job = job  # shares its config, reloaded before each run
        self.runner = runner
        self.clock = clock

    def __call__(self) -> None:
        config = self.job.config = self.job._reloaded()

        def run_if_due() -> object:
            due = readers_due(config, self.clock())
            if not due:
                return NOT_RUN
            log.info("%d store readers due; running for them", len(due))
            return self.runner(config)

        run_guarded("readers' run", "the next wake", run_if_due)


def build_scheduler(
    config: Config, job: DigestJob, wake: ReadersWake | None = None
) -> BackgroundScheduler:
    """The cron line's job and the readers' wake, run one at a time by one thread."""
    settings = schedule_of(config)
    zone = zone_of(config)
    scheduler = BackgroundScheduler(
        timezone=ZoneInfo(zone), executors={"default": ThreadPoolExecutor(1)}
    )
    grace = settings.misfire_grace_minutes * 60
    scheduler.add_job(
        job,
        cron_trigger(settings.cron, zone),
        id=JOB_ID,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=grace,
    )
    scheduler.add_job(
        wake or ReadersWake(job),
        CronTrigger(minute=f"*/{WAKE_MINUTES}", timezone=UTC),
        id=WAKE_ID,
        max_instances=1,
        coalesce=True,
        misfire_grace_time=grace,
    )
    return scheduler


def missed_last_run(config: Config, now: datetime) -> bool:
    """Whether the most recent scheduled time passed without a run starting after it."""
    settings = schedule_of(config)
    due = previous_fire_time(settings.cron, zone_of(config), now)
    if due is None:
        return False
    path = config.resolve(config.store.path)
    if not Path(path).exists():
        return True
    with open_store(config) as store:
        runs = [r for r in store.last_runs(20) if not r["dry_run"]]
    return not any(datetime.fromisoformat(r["started_at"]) >= due for r in runs)


def run_scheduler(
    config: Config,
    *,
    stop: threading.Event | None = None,
    on_start: Callable[[], None] | None = None,
) -> int:
    """Run until SIGTERM/SIGINT (or ``stop``); the run in progress always finishes."""
    stop = stop or threading.Event()
    job = DigestJob(config)
    scheduler = build_scheduler(config, job)

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info(
            "%s received: finishing the run in progress, then stopping", signal.Signals(signum).name
        )
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
    scheduler.start()
    settings = schedule_of(config)
    log.info("scheduler started: %r in %s", settings.cron, zone_of(config))
    log.info("store readers: checked every %d minutes, served at their own send hour", WAKE_MINUTES)
    job.log_next()
    if settings.catch_up and missed_last_run(config, datetime.now(UTC)):
        log.info("the last scheduled run was missed; running now")
        scheduler.add_job(job, id="catch-up", max_instances=1)
    if on_start is not None:
        on_start()
    stop.wait()
    scheduler.shutdown(wait=True)  # waits for a run in progress
    log.info("scheduler stopped")
    return 0
