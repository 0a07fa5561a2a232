"""The state store (SQLite by default, PostgreSQL for several workers): see store.py."""

from digest.store.digests import LedgerEntry, Owed, Pending, PendingDelivery
from digest.store.papers import UpsertResult
from digest.store.readers import ImportResult
from digest.store.runs import StoreSummary, SubscriberSummary
from digest.store.store import Store

__all__ = [
    "ImportResult",
    "LedgerEntry",
    "Owed",
    "Pending",
    "PendingDelivery",
    "Store",
    "StoreSummary",
    "SubscriberSummary",
    "UpsertResult",
]
