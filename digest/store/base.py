"""The store's connection, its transactions, and what differs between SQLite and PostgreSQL.

All writes go through :meth:`StoreBase.transaction`. A dry run wraps the whole run in one
outer transaction that is rolled back at the end, so it sees its own writes and leaves
nothing behind (units inside it become savepoints).

Concurrency differs by backend:

- SQLite (one machine): one run at a time, enforced by an ``flock`` on a file beside the
  store (see ``lock.py``); everything inside the run is then single-writer.
- PostgreSQL (several workers): runs may overlap. Ingesting is serialised by an advisory
  lock, each subscriber is claimed by one worker at a time (``SELECT ... FOR UPDATE SKIP
  LOCKED`` on its row), and a worker that dies loses its locks with its connection, so
  another worker takes its subscribers over.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.exc import OperationalError

from digest.errors import StoreError
from digest.models import Paper, StoredPaper
from digest.store.lock import RunLock
from digest.store.migrations import SCHEMA_VERSION, current_version, migrate

CHUNK = 500  # keys per IN (...) query: well under every backend's parameter limit
_INGEST_LOCK = 7_351_001  # advisory lock ids (PostgreSQL): arbitrary, fixed
_MIGRATE_LOCK = 7_351_000
_POSTGRES_HINT = (
    "check `[store] url` (or the variable `url_env` names), and that the PostgreSQL "
    "server is running, reachable from here, and accepts that user"
)
_RUN_LOCK_BASE = 7_352_000_000


class StoreBase:
    """One connection to the store for the length of a run (or a CLI command)."""

    def __init__(
        self,
        engine: Engine,
        location: str,
        *,
        lock_path: Path | None = None,
        dry_run: bool = False,
    ) -> None:
        self.engine = engine
        self.location = location
        self.dry_run = dry_run
        self.postgres = engine.dialect.name == "postgresql"
        self.lock = RunLock(lock_path) if lock_path else None
        self._depth = 0
        self._papers: dict[int, StoredPaper] = {}  # decoded papers, for the length of a run
        self._side: list[Connection] = []  # connections holding PostgreSQL locks
        try:
            self.conn: Connection = engine.connect()
            with self.conn.begin():
                version = current_version(self.conn)
            if version != SCHEMA_VERSION:
                # Take the write lock up front: two processes creating or migrating the
                # same store at once must queue, not deadlock.
                if not self.postgres:
                    self.conn.info["begin_immediate"] = True
                with self.conn.begin():
                    if self.postgres:  # one migrator at a time
                        self.conn.execute(
                            text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATE_LOCK}
                        )
                    version = migrate(self.conn, location)
            self.schema_version = version
        except OperationalError as exc:
            raise StoreError(
                f"{location}: cannot open the store: {exc.orig}",
                hint=_POSTGRES_HINT if self.postgres else None,
            ) from None
        self._outer = self.conn.begin() if dry_run else None

    @classmethod
    def open(cls, target: Path | str, *, dry_run: bool = False) -> Any:
        """Open (creating if needed) the store: a SQLite path or a postgresql:// URL."""
        if isinstance(target, str) and target.startswith(("postgresql://", "postgresql+")):
            url = target.replace("postgresql://", "postgresql+psycopg://", 1)
            try:
                engine = create_engine(url, pool_pre_ping=True)
            except ModuleNotFoundError:
                raise StoreError(
                    f"{_redacted(target)}: PostgreSQL support is not installed; "
                    "install it with: pip install 'paper-digest[postgres]'"
                ) from None
            return cls(engine, _redacted(target), dry_run=dry_run)
        path = Path(target)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{path}: cannot create the store's folder: {exc}") from None
        _create_private(path)
        engine = create_engine(f"sqlite:///{path}")
        _configure_sqlite(engine)
        return cls(
            engine, str(path), lock_path=path.with_name(path.name + ".lock"), dry_run=dry_run
        )

    def close(self) -> None:
        if self._outer is not None:
            self._outer.rollback()
            self._outer = None
        if self.lock is not None:
            self.lock.release()
        for side in self._side:
            side.close()
        self._side.clear()
        self.conn.close()
        self.engine.dispose()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A unit of work: committed on success (a savepoint in a dry run), else rolled back.

        Reads outside a unit run in a transaction SQLAlchemy begins implicitly; it is
        ended here first, so every unit starts from the latest committed state.
        """
        nested = self._outer is not None or self._depth > 0
        if not nested and self.conn.in_transaction():
            self.conn.commit()
        if not nested and not self.postgres:
            # A unit writes: on SQLite, take the write lock at once (waiting for it if
            # another process has it), as a read-then-write transaction that meets a
            # writer fails instead of waiting.
            self.conn.info["begin_immediate"] = True
        unit = self.conn.begin_nested() if nested else self.conn.begin()
        self._depth += 1
        try:
            yield self.conn
        except BaseException:
            unit.rollback()
            raise
        else:
            unit.commit()
        finally:
            self._depth -= 1

    # --- who may do what, when several processes share the store ----------------------------

    def acquire_run(self, now: Any) -> None:
        """SQLite: take the exclusive run lock, or raise LockedError. PostgreSQL: nothing,
        runs may overlap (see ``claim``)."""
        if self.lock is not None:
            self.lock.acquire(now)

    def hold_run(self, run_id: int) -> None:
        """PostgreSQL: mark this run as alive (an advisory lock on its id) for as long as
        this process lives, so another worker can tell a dead 'running' run."""
        if self.postgres:
            side = self._side_connection()
            side.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _RUN_LOCK_BASE + run_id})

    def run_is_alive(self, run_id: int) -> bool:
        """Whether the process of a 'running' run still holds it (PostgreSQL only)."""
        if not self.postgres:
            return False  # SQLite: we hold the only run lock, so any other run is dead
        with self.engine.connect() as probe:
            got = probe.execute(
                text("SELECT pg_try_advisory_lock(:k)"), {"k": _RUN_LOCK_BASE + run_id}
            ).scalar()
            if got:
                probe.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _RUN_LOCK_BASE + run_id})
            probe.commit()
        return not got

    @contextmanager
    def ingest_lock(self) -> Iterator[None]:
        """Serialise ingesting between workers sharing a PostgreSQL store."""
        if not self.postgres:
            yield
            return
        side = self._side_connection()
        side.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _INGEST_LOCK})
        try:
            yield
        finally:
            side.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _INGEST_LOCK})

    @contextmanager
    def claim(self, subscriber: str) -> Iterator[bool]:
        """Claim a subscriber for this worker; yields False if another worker has it.

        SQLite runs are exclusive, so the claim always succeeds. PostgreSQL locks the
        subscriber's row on a connection of its own until the block ends; if this process
        dies, the lock goes with the connection and another worker can claim it.
        """
        if not self.postgres or self.dry_run:
            yield True
            return
        side = self.engine.connect()
        try:
            side.begin()
            got = side.execute(
                text("SELECT name FROM subscribers WHERE name = :n FOR UPDATE SKIP LOCKED"),
                {"n": subscriber},
            ).first()
            yield got is not None
        finally:
            side.rollback()
            side.close()

    def _side_connection(self) -> Connection:
        if not self._side:
            side = self.engine.connect()
            side.execution_options(isolation_level="AUTOCOMMIT")
            self._side.append(side)
        return self._side[0]

    # --- decoded papers, shared by everything a run reads ------------------------------------

    def _stored(self, uid: int, data: str, first_seen: date) -> StoredPaper:
        cached = self._papers.get(uid)
        if cached is not None and cached.first_seen == first_seen:
            return cached
        stored = StoredPaper(uid, Paper.from_json(json.loads(data)), first_seen)
        self._papers[uid] = stored
        return stored

    def _forget(self, uid: int) -> None:
        self._papers.pop(uid, None)


def _redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


WAL_CHECKPOINT_PAGES = 10_000


def _configure_sqlite(engine: Engine) -> None:
    """WAL for readers beside the writer, foreign keys, and real SAVEPOINTs for dry runs."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=10000")
        _switch_to_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Copy the WAL back into the database every 10,000 pages (40 MB), not SQLite's
        # 1,000: each copy ends in a sync, and in a large store a run's digests touch pages
        # far apart. A run at 10,000 readers with a year of history recorded in 10 s a
        # worker instead of 30.
        cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Reads begin deferred, so readers (`digest state`) never block. Units of work
        # (StoreBase.transaction) and schema changes ask for the write lock at once: the
        # worker processes of a run write side by side, and a deferred transaction that
        # turns into a write while another process writes fails instead of waiting.
        immediate = conn.info.pop("begin_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _create_private(path: Path) -> None:
    """Create a missing SQLite file readable by its owner only, whatever the umask.

    The store holds every subscriber's address and reading history. SQLite gives the
    WAL and shared-memory files beside it the same mode as the database file.
    """
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return
    except OSError as exc:
        raise StoreError(f"{path}: cannot create the store: {exc}") from None


def _switch_to_wal(cursor: Any, patience: float = 10.0) -> None:
    """Put the database in WAL mode. On a new file another process may be creating at
    the same moment, SQLite refuses the switch at once ("database is locked") instead
    of waiting like other statements: try again for a while."""
    deadline = time.monotonic() + patience
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
