"""When each reader was last served (for cadences), and addresses the mail server refuses.

``subscribers.served_at`` says when a run last served a reader: made its digest, or found
nothing owed. A daily or weekly reader is served once per period however often runs
happen, because a run serves only readers not served since their latest send moment.

``bounces`` counts the runs in a row on which the mail server refused an address for
good (a 5xx to RCPT): at most once per run, cleared by a delivery it accepts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select, update

from digest.store.base import CHUNK, StoreBase
from digest.store.schema import bounces, subscribers


@dataclass(frozen=True, slots=True)
class Bounce:
    email_key: str
    runs: int  # runs in a row with a permanent refusal
    last_run_id: int | None
    first_at: datetime
    last_at: datetime
    last_reply: str


class ServingMixin(StoreBase):
    _bounce_keys: set[str] | None = None  # addresses with refusals, read once a connection

    # --- when readers were served -----------------------------------------------------------

    def served_times(self, names: Sequence[str]) -> dict[str, datetime]:
        """When each of these readers was last served (those never served are left out)."""
        found: dict[str, datetime] = {}
        unique = list(dict.fromkeys(names))
        for start in range(0, len(unique), CHUNK):
            rows = self.conn.execute(
                select(subscribers.c.name, subscribers.c.served_at).where(
                    subscribers.c.name.in_(unique[start : start + CHUNK]),
                    subscribers.c.served_at.is_not(None),
                )
            )
            found.update(rows.all())
        return found

    def mark_served(self, names: Sequence[str], now: datetime) -> None:
        """Record that a run served these (registered) readers now, in one transaction
        (a reader with a digest is marked by ``create_digests``, in the digest's)."""
        if not names:
            return
        with self.transaction() as conn:
            for start in range(0, len(names), CHUNK):
                conn.execute(
                    update(subscribers)
                    .where(subscribers.c.name.in_(names[start : start + CHUNK]))
                    .values(served_at=now)
                )

    # --- bounces ------------------------------------------------------------------------------

    def bounce_of(self, email_key: str) -> Bounce | None:
        row = self.conn.execute(select(bounces).where(bounces.c.email_key == email_key)).first()
        return Bounce(**row._mapping) if row is not None else None

    def record_bounce(
        self, email_key: str, run_id: int | None, reply: str, now: datetime
    ) -> Bounce:
        """Count a permanent refusal of this address: once per run (a second refusal in
        the same run only updates the reply). Return the count as it now stands."""
        with self.transaction() as conn:
            old = self.bounce_of(email_key)
            if old is None:
                conn.execute(
                    insert(bounces).values(
                        email_key=email_key,
                        runs=1,
                        last_run_id=run_id,
                        first_at=now,
                        last_at=now,
                        last_reply=reply,
                    )
                )
            else:
                again = run_id is not None and old.last_run_id == run_id
                conn.execute(
                    update(bounces)
                    .where(bounces.c.email_key == email_key)
                    .values(
                        runs=old.runs if again else old.runs + 1,
                        last_run_id=run_id,
                        last_at=now,
                        last_reply=reply,
                    )
                )
            found = self.bounce_of(email_key)
        assert found is not None
        self._bouncing_keys().add(email_key)
        return found

    def clear_bounce(self, email_key: str) -> None:
        """Forget an address' refusals: the server accepted a message for it. Costs no
        write unless it had some (known from one read per store connection)."""
        keys = self._bouncing_keys()
        if email_key not in keys:
            return
        with self.transaction() as conn:
            conn.execute(delete(bounces).where(bounces.c.email_key == email_key))
        keys.discard(email_key)

    def bounce_list(self) -> list[Bounce]:
        """Every address with refusals, most runs first."""
        rows = self.conn.execute(
            select(bounces).order_by(bounces.c.runs.desc(), bounces.c.email_key)
        )
        return [Bounce(**row._mapping) for row in rows]

    def _bouncing_keys(self) -> set[str]:
        if self._bounce_keys is None:
            self._bounce_keys = set(self.conn.execute(select(bounces.c.email_key)).scalars())
        return self._bounce_keys
