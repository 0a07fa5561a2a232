"""Finding one reader by name or address, wherever it is kept: the config's
``[[subscribers]]`` first (the config wins a clash), then the store's readers, whatever
their status. Used by the commands that name a reader (`digest preview`, `explain`,
`feedback`) so that a reader added by the command line or a sign-up page is found as a
config reader is.
"""

from __future__ import annotations

from digest.config import Config, SubscriberSettings
from digest.errors import SubscriberError
from digest.readers import config_reader
from digest.store import Store


def find_reader(config: Config, store: Store, ref: str) -> SubscriberSettings:
    """The reader called ``ref`` (or with that address), or a SubscriberError that says
    where it was looked for and how to list the readers."""
    defined = config_reader(config, ref)
    if defined is not None:
        return defined
    stored = store.get_subscriber(ref)
    if stored is not None:
        return stored.settings
    raise SubscriberError(
        f"no reader {ref!r} in {config.path} ([[subscribers]]) or in its store {store.location}",
        hint=f"`digest subscribers list --config {config.path}` shows every reader, by name "
        "and address",
    )
