"""Ranking: score new papers against a reader's profile and explain every point.

- ``text``: tokens and stems (shared with highlighting);
- ``profile``: the keyword language and the Profile value;
- ``corpus``: the run's papers analysed once into sparse counts, shared by all readers;
- ``parts``, ``keywords``: the ways a keyword scores, and every reader's keywords as arrays;
- ``table``: the terms of a batch of readers over their candidates, as sparse matrices;
- ``expand``: query expansion, related words learnt from each interest's best papers;
- ``score``: BM25F plus authors, categories, popularity, liked-paper similarity and the
  model of the reader's ratings;
- ``matches``: explanations, every point of a score as a Match;
- ``similar``: TF-IDF vectors and similarity to liked papers;
- ``learn``: a per-reader model of the ratings over those vectors;
- ``semantic``: the optional blend with closeness in meaning;
- ``highlight``: where matched terms occur in a text.

All of it is pure: values in, values out.
"""

from digest.rank.corpus import Corpus
from digest.rank.highlight import highlight_spans
from digest.rank.profile import Interest, Profile, Term, TermSyntaxError, parse_term
from digest.rank.score import DEFAULT_WEIGHTS, Ranking, Weights, rank

__all__ = [
    "DEFAULT_WEIGHTS",
    "Corpus",
    "Interest",
    "Profile",
    "Ranking",
    "Term",
    "TermSyntaxError",
    "Weights",
    "highlight_spans",
    "parse_term",
    "rank",
]
