"""The reader's links: manage, unsubscribe, ratings and confirmation URLs, signed.

One place builds them so that the emails, pages and feeds that show them and the web
pages that answer them agree on every path. Links exist only when the config has both a
public ``[output] base_url`` (where `digest serve` answers) and a ``[web] secret_env``;
otherwise ``links_for`` gives None and nothing signed is shown.

Paths (the token is the only part that names the reader):

- ``/confirm/<token>``: GET a page with one button, POST confirms (expires);
- ``/manage/<token>``: the preferences form;
- ``/unsubscribe/<token>``: GET a page with one button, POST unsubscribes (also the
  RFC 8058 one-click POST);
- ``/rate/<token>/up`` and ``/down``: GET a page with one button, POST records the vote;
- ``/ratings/<token>``: the reader's ratings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from digest.config import Config
from digest.tokens import Signer, signer_from_env


@dataclass(frozen=True, slots=True)
class Links:
    """Signed URLs under ``base_url``."""

    base_url: str
    signer: Signer

    def manage(self, key: str) -> str:
        return f"{self.base_url}/manage/{self.signer.sign('manage', key)}"

    def unsubscribe(self, key: str) -> str:
        return f"{self.base_url}/unsubscribe/{self.signer.sign('unsubscribe', key)}"

    def ratings(self, key: str) -> str:
        return f"{self.base_url}/ratings/{self.signer.sign('ratings', key)}"

    def rate(self, key: str, paper_id: int, vote: str) -> str:
        """``vote`` is "up" (more like this) or "down" (less like this)."""
        return f"{self.rate_base(key, paper_id)}/{vote}"

    def rate_base(self, key: str, paper_id: int) -> str:
        """The rating URL without its vote: one token serves both votes of a paper."""
        return f"{self.base_url}/rate/{self.signer.sign('rate', key, str(paper_id))}"

    def confirm(self, key: str, expires: datetime) -> str:
        return f"{self.base_url}/confirm/{self.signer.sign('confirm', key, expires=expires)}"


def links_for(config: Config) -> Links | None:
    """The config's links, or None when it has no public base URL or no web secret."""
    if not config.output.base_url or not config.web.secret_env:
        return None
    signer = signer_from_env(config.web.secret_env)
    return Links(config.output.base_url, signer) if signer else None
