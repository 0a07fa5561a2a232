"""The state store (SQLite by default): see store.py for the semantics it keeps."""

from digest.store.store import PendingDelivery, Store, StoreSummary, UpsertResult

__all__ = ["PendingDelivery", "Store", "StoreSummary", "UpsertResult"]
