"""The state store (SQLite by default, PostgreSQL for several workers): see store.py."""

from digest.store.store import (
    LedgerEntry,
    Owed,
    Pending,
    PendingDelivery,
    Store,
    StoreSummary,
    SubscriberSummary,
    UpsertResult,
)

__all__ = [
    "LedgerEntry",
    "Owed",
    "Pending",
    "PendingDelivery",
    "Store",
    "StoreSummary",
    "SubscriberSummary",
    "UpsertResult",
]
