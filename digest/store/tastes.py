"""The model of each reader's ratings (rank.learn.Taste), kept between runs.

A run fits a reader's model only when the reader's ratings (or the features) changed
since the model kept here was fitted; otherwise it ranks with this one. Its words are
kept by stem, so it applies to any later day's vectors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np
from sqlalchemy import delete, insert, select

from digest.rank.learn import Taste
from digest.store.base import CHUNK, StoreBase
from digest.store.schema import tastes


class TastesMixin(StoreBase):
    def tastes_of(self, names: Sequence[str]) -> dict[str, Taste]:
        """The kept model of each of these readers that has one."""
        found: dict[str, Taste] = {}
        unique = list(dict.fromkeys(names))
        for start in range(0, len(unique), CHUNK):
            rows = self.conn.execute(
                select(tastes).where(tastes.c.subscriber.in_(unique[start : start + CHUNK]))
            )
            for row in rows:
                words = tuple(row.words.split("\n")) if row.words else ()
                weights = np.frombuffer(row.weights, dtype="<f4")
                if len(weights) != len(words):  # not one this code wrote: fitted again
                    continue
                meaning = None if row.meaning is None else np.frombuffer(row.meaning, "<f4")
                found[row.subscriber] = Taste(row.fingerprint, row.ratings, words, weights, meaning)
        return found

    def keep_tastes(self, models: Mapping[str, Taste], now: datetime) -> None:
        """Keep these readers' models, each replacing the reader's last one."""
        names = list(models)
        if not names:
            return
        with self.transaction() as conn:
            for start in range(0, len(names), CHUNK):
                chunk = names[start : start + CHUNK]
                conn.execute(delete(tastes).where(tastes.c.subscriber.in_(chunk)))
                conn.execute(
                    insert(tastes),
                    [
                        {
                            "subscriber": name,
                            "fingerprint": models[name].fingerprint,
                            "ratings": models[name].ratings,
                            "words": "\n".join(models[name].words),
                            "weights": np.asarray(models[name].weights, "<f4").tobytes(),
                            "meaning": None
                            if models[name].meaning is None
                            else np.asarray(models[name].meaning, "<f4").tobytes(),
                            "fitted_at": now,
                        }
                        for name in chunk
                    ],
                )
