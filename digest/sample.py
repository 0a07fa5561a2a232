"""A small sample digest, for `digest send-test`: three made-up papers, one of them long."""

from __future__ import annotations

from datetime import date

from digest.models import Digest, Match, Paper, Scored, StoredPaper

_PAPERS = [
    (
        "A Sample Paper on Linear Attention for Long Documents",
        "This is a sample abstract, sent by paper-digest to check that your mail setup works. "
        "A real digest lists the new papers that match your keywords, best first, with the "
        "terms that matched highlighted and a link to each paper.",
        ("Ada Example", "Grace Sample"),
        (
            Match("linear attention", "title", 1, 4.24),
            Match("linear attention", "abstract", 1, 1.41),
        ),
    ),
    (
        "Second Sample: State Space Models, Explained Briefly",
        "Another sample abstract. If you can read this in your mail client, in both its "
        "light and dark themes, the HTML part of your digests will look the same.",
        ("Alan Placeholder",),
        (Match("state space model", "title", 1, 5.2),),
    ),
    (
        "Third Sample with Non-ASCII Text: Déjà Vu, Ünïcödé and Emoji 🚀",
        "The last sample checks that accents, symbols (α, ≤, →) and emoji survive the trip.",
        ("Zoë Testperson", "Øyvind Example", "李 Sample"),
        (Match("mamba", "abstract", 1, 1.0),),
    ),
]


def sample_digest(subscriber: str, day: date) -> Digest:
    papers = tuple(
        Scored(
            StoredPaper(
                number, Paper.from_source(title=title, abstract=abstract, authors=authors), day
            ),
            sum(m.points for m in matches),
            matches,
        )
        for number, (title, abstract, authors, matches) in enumerate(_PAPERS, start=1)
    )
    return Digest(subscriber=subscriber, date=day, seq=1, papers=papers, candidates=len(papers))
