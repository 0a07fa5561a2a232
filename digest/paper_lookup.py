"""Finding the one stored paper a command names: by arXiv id (any spelling), by its
``title:`` ref, by its whole title, or by words of its title when they name one paper
only. Used by `digest explain` and `digest rate`, so that "ARC Sort" finds "ARC Sort:
Enhanced and Time Efficient Sorting Algorithm" and a reader need not copy a title whole.
"""

from __future__ import annotations

from digest.errors import DigestError
from digest.ids import parse_arxiv_id
from digest.models import StoredPaper
from digest.store import Store

SHOWN = 5  # the papers an ambiguous title names, listed so the reader can pick one


def find_named_paper(store: Store, ref: str, hint: str) -> StoredPaper:
    """The paper ``ref`` names, or a DigestError that says what was looked for (with
    ``hint``) or, when words of a title fit several papers, which ones."""
    ref = ref.strip()
    found = store.find_paper(ref)
    if found is not None:
        return found
    parsed = parse_arxiv_id(ref)
    if parsed:
        raise DigestError(f"no paper with arXiv id {parsed[0]} in the store {store.location}",
                          hint=hint)  # fmt: skip
    titled = [] if ref.startswith("title:") else store.papers_titled(ref, SHOWN + 1)
    if len(titled) == 1:
        return titled[0]
    if not titled:
        raise DigestError(f"no paper titled {ref!r} in the store {store.location}", hint=hint)
    listed = "; ".join(
        f"{p.paper.title} ({p.paper.arxiv_id})" if p.paper.arxiv_id else p.paper.title
        for p in titled[:SHOWN]
    )
    more = " and more" if len(titled) > SHOWN else ""
    raise DigestError(
        f"{ref!r} is in the titles of several papers of {store.location}: {listed}{more}",
        hint="give more of the title, or the paper's arXiv id",
    )
