"""The papers a run ranks, analysed once and shared by every subscriber.

Each field (title, abstract) becomes a sparse paper-by-token count matrix, over stems and
over exact words, so a one-word term's counts are one sparse column. A phrase first
narrows to the papers that contain all of its tokens (a sparse intersection) and only
then checks their order, paper by paper. What a term matches is kept sparse (the papers
where it occurs, and how often), and cached by what it matches, so a thousand readers who
follow "linear attention" cost one count, and its BM25F points are computed once.

Document frequencies come from the same corpus, which holds the store's recent papers
besides today's: a word common in the field (``model``, ``learning``) weighs little.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

from digest.models import StoredPaper
from digest.rank.profile import Term
from digest.rank.table import TermTable
from digest.rank.text import NO_CLASH, clashing_form, fold, form_of, root_of, stem_key, words

if TYPE_CHECKING:
    from digest.rank.expand import Related, Vocabulary
    from digest.rank.score import Weights

FIELDS = ("title", "abstract")


@dataclass(frozen=True, slots=True)
class TermStats:
    """Where a term occurs: corpus rows (sorted) and its count in each field there."""

    rows: np.ndarray  # int64
    title: np.ndarray  # float64 counts
    abstract: np.ndarray


class _Field:
    """One field of every paper as token ids: count matrices and a positional index.

    The tokens of all papers are laid end to end (a separator between two papers, so no
    phrase spans both); for each token id, where it occurs in that sequence. A phrase is
    then a few sorted-array lookups: the places where its first word is followed by the
    second, and so on.
    """

    def __init__(self, documents: list[list[str]]) -> None:
        self.lengths = np.array([len(d) for d in documents], dtype=np.float64)
        self.words = _Tokens(documents)
        # Stems are laid out by their root, and each place keeps its form (text.FORMS), so
        # a term's key finds its compatible forms in one column, filtered by form. Each
        # distinct word is stemmed once, and the layout follows the words' by lookup.
        roots: dict[str, int] = {}
        root_of_word = np.zeros(len(self.words.index) + 1, dtype=np.int64)
        form_of_word = np.zeros(len(self.words.index) + 1, dtype=np.int8)
        for word, column in self.words.index.items():
            key = stem_key(word)
            root_of_word[column] = roots.setdefault(root_of(key), len(roots))
            form_of_word[column] = form_of(key)
        root_of_word[-1] = -1  # a separator stays one
        self.stems = _Tokens.laid_out(roots, root_of_word[self.words.ids], self.words.starts)
        self.forms = form_of_word[self.words.ids]


class _Tokens:
    def __init__(self, documents: list[list[str]]) -> None:
        index: dict[str, int] = {}
        flat: list[int] = []
        starts = [0]
        for document in documents:
            flat.extend([index.setdefault(token, len(index)) for token in document])
            flat.append(-1)  # the separator between two papers
            starts.append(len(flat))
        self._lay_out(index, np.array(flat, dtype=np.int64), np.array(starts, dtype=np.int64))

    @classmethod
    def laid_out(cls, index: dict[str, int], ids: np.ndarray, starts: np.ndarray) -> _Tokens:
        """Tokens already numbered: ``ids`` in reading order, -1 between two papers."""
        tokens = cls.__new__(cls)
        tokens._lay_out(index, ids, starts)
        return tokens

    def _lay_out(self, index: dict[str, int], ids: np.ndarray, starts: np.ndarray) -> None:
        self.index = index
        self.ids = ids
        self.starts = starts
        documents = len(starts) - 1
        self.row_at = np.repeat(np.arange(documents, dtype=np.int64), np.diff(self.starts))
        real = ids >= 0
        self.matrix = sparse.csc_matrix(
            (np.ones(int(real.sum())), (self.row_at[real], ids[real])),
            shape=(documents, max(len(index), 1)),
        )
        self.matrix.sum_duplicates()
        self._order = np.argsort(ids, kind="stable")
        self._bounds = np.searchsorted(ids[self._order], np.arange(len(index) + 1))

    def occurrences(self, columns: list[int]) -> np.ndarray:
        """Positions (in the laid-out sequence, ascending) of any of the token ids."""
        parts = [self._order[self._bounds[c] : self._bounds[c + 1]] for c in columns]
        return parts[0] if len(parts) == 1 else np.sort(np.concatenate(parts))


class Corpus:
    """Analysed papers: sparse token counts per field, lengths, document frequencies."""

    def __init__(self, papers: Sequence[StoredPaper]) -> None:
        self.papers = list(papers)
        self.row = {paper.uid: i for i, paper in enumerate(self.papers)}
        self.size = len(self.papers)
        self.fields = {
            "title": _Field([words(p.paper.title) for p in self.papers]),
            "abstract": _Field([words(p.paper.abstract) for p in self.papers]),
        }
        self.average_length = {
            name: float(f.lengths.mean()) if self.size and f.lengths.mean() > 0 else 1.0
            for name, f in self.fields.items()
        }
        self.uids = np.array([p.uid for p in self.papers], dtype=np.int64)
        self.upvotes = np.array([p.paper.upvotes or 0 for p in self.papers], dtype=np.float64)
        self.stars = np.array([p.paper.github_stars or 0 for p in self.papers], dtype=np.float64)
        self._stats: dict[tuple[str, tuple[str, ...], int], TermStats] = {}
        self._tables: dict[tuple[int, Weights], TermTable] = {}
        self._norms: dict[tuple[float, float], dict[str, np.ndarray]] = {}
        self._people: dict[str, set[int]] | None = None
        self._rows: dict[int, tuple[Sequence[StoredPaper], np.ndarray]] = {}
        self._categories: dict[str, set[int]] | None = None
        self.expansions: dict[tuple[Weights, tuple[Term, ...]], Related] = {}  # see rank.expand
        self._vocabulary: Vocabulary | None = None

    def vocabulary(self) -> Vocabulary:
        """Every word of the corpus as columns, for query expansion (built on first use)."""
        if self._vocabulary is None:
            from digest.rank.expand import Vocabulary

            self._vocabulary = Vocabulary(self)
        return self._vocabulary

    def __contains__(self, paper: StoredPaper) -> bool:
        return paper.uid in self.row

    def rows_of(self, papers: Sequence[StoredPaper]) -> np.ndarray:
        """Corpus rows of ``papers``; cached per list object, since readers owed the same
        papers are handed the very same list (see store.Pending)."""
        cached = self._rows.get(id(papers))
        if cached is not None and cached[0] is papers:
            return cached[1]
        found = np.fromiter((self.row[p.uid] for p in papers), dtype=np.int64, count=len(papers))
        if len(self._rows) > 256:
            self._rows.clear()
        self._rows[id(papers)] = (papers, found)  # the list is kept, so its id stays its own
        return found

    def table(self, candidates: Sequence[StoredPaper], weights: Weights) -> TermTable:
        """The term table over ``candidates`` (cached per list, like ``rows_of``; a list
        of every paper in corpus order shares the table of ``papers``, which query
        expansion builds)."""
        everything = candidates is not self.papers and len(candidates) == self.size
        if everything and np.array_equal(self.rows_of(candidates), np.arange(self.size)):
            candidates = self.papers
        key = (id(candidates), weights)
        found = self._tables.get(key)
        if found is None or found.candidates is not candidates:
            if len(self._tables) > 16:
                self._tables.clear()
            found = self._tables[key] = TermTable(self, candidates, weights)
        return found

    # --- term statistics ------------------------------------------------------------------

    def stats(self, term: Term) -> TermStats:
        """Where ``term`` occurs, and how often in each field (cached)."""
        key = term.identity
        found = self._stats.get(key)
        if found is None:
            found = self._stats[key] = self._compute_stats(term)
        return found

    def missing(self, terms: Sequence[Term]) -> list[Term]:
        """The terms whose statistics are not known yet."""
        return [term for term in terms if term.identity not in self._stats]

    def remember(self, terms: Sequence[Term], found: Sequence[TermStats]) -> None:
        """Statistics of ``terms`` computed elsewhere (by a copy of this corpus)."""
        for term, stats in zip(terms, found, strict=True):
            self._stats[term.identity] = stats

    def idf(self, term: Term) -> float:
        """BM25's inverse document frequency of ``term`` over the corpus, always above 0."""
        df = float(len(self.stats(term).rows))
        return math.log(1.0 + (self.size - df + 0.5) / (df + 0.5))

    def idf_of_share(self, share: float) -> float:
        """The IDF of a term found in ``share`` of the corpus (see ``idf``)."""
        df = share * self.size
        return math.log(1.0 + (self.size - df + 0.5) / (df + 0.5))

    def norms(self, weights: Weights) -> dict[str, np.ndarray]:
        key = (weights.b_title, weights.b_abstract)
        if key not in self._norms:
            self._norms[key] = {
                f: 1.0
                - weights.b(f)
                + weights.b(f) * self.fields[f].lengths / self.average_length[f]
                for f in FIELDS
            }
        return self._norms[key]

    def _compute_stats(self, term: Term) -> TermStats:
        per_field = {name: self._field_counts(field, term) for name, field in self.fields.items()}
        rows = np.union1d(per_field["title"][0], per_field["abstract"][0]).astype(np.int64)
        counts = {}
        for name, (found_rows, values) in per_field.items():
            dense = np.zeros(len(rows))
            dense[np.searchsorted(rows, found_rows)] = values
            counts[name] = dense
        return TermStats(rows, counts["title"], counts["abstract"])

    def _field_counts(self, field: _Field, term: Term) -> tuple[np.ndarray, np.ndarray]:
        """(rows, counts) where the term occurs in one field."""
        empty = (np.zeros(0, dtype=np.int64), np.zeros(0))
        columns = [_columns(field, term, position) for position in range(len(term.keys))]
        if any(not found for found in columns):
            return empty
        clashes = [_clash(field, term, position) for position in range(len(term.keys))]
        if len(term.keys) == 1 and clashes[0] == NO_CLASH:
            return _column_counts(_tokens(field, term, 0), columns[0])
        occurrences = [
            _occurrences(field, _tokens(field, term, k), c, clash)
            for k, (c, clash) in enumerate(zip(columns, clashes, strict=True))
        ]
        if len(term.keys) == 1:
            return _runs(field.words.row_at[occurrences[0]])
        if term.window:
            return _near_counts(field.words, occurrences, term.window)
        starts = occurrences[0]
        for k, following in enumerate(occurrences[1:], start=1):
            at = np.searchsorted(following, starts + k)
            hit = at < len(following)
            hit[hit] = following[at[hit]] == starts[hit] + k
            starts = starts[hit]
        return _runs(field.words.row_at[starts])

    # --- who wrote what, where it was filed -----------------------------------------------

    def rows_by_author(self, name: str) -> set[int]:
        """Rows of papers by ``name``: a full name, or a surname alone ("LeCun")."""
        if self._people is None:
            self._people = {}
            for row, paper in enumerate(self.papers):
                for author in paper.paper.authors:
                    folded = " ".join(fold(author).split())
                    self._people.setdefault(folded, set()).add(row)
                    self._people.setdefault("surname:" + folded.rsplit(" ", 1)[-1], set()).add(row)
        key = name if " " in name else "surname:" + name
        return self._people.get(key, set())

    def rows_in_category(self, category: str) -> set[int]:
        if self._categories is None:
            self._categories = {}
            for row, paper in enumerate(self.papers):
                for found in paper.paper.categories:
                    self._categories.setdefault(found.lower(), set()).add(row)
        return self._categories.get(category.lower(), set())


def _tokens(field: _Field, term: Term, position: int) -> _Tokens:
    """Exact words for "exact" terms and a prefix's last word; stems otherwise."""
    last = position == len(term.keys) - 1
    exact = term.mode == "exact" or (term.mode == "prefix" and last)
    return field.words if exact else field.stems


def _columns(field: _Field, term: Term, position: int) -> list[int]:
    key = term.keys[position]
    tokens = _tokens(field, term, position)
    if term.mode == "prefix" and position == len(term.keys) - 1:
        return [c for word, c in tokens.index.items() if word.startswith(key)]
    if tokens is field.stems:  # one column for every form of the stem (see _clash)
        key = root_of(key)
    column = tokens.index.get(key)
    return [column] if column is not None else []


def _clash(field: _Field, term: Term, position: int) -> int:
    """The form of stem the term's word at ``position`` must not match (text.clashing_form),
    or NO_CLASH."""
    if _tokens(field, term, position) is not field.stems:
        return NO_CLASH
    return clashing_form(term.keys[position])


def _occurrences(field: _Field, tokens: _Tokens, columns: list[int], clash: int) -> np.ndarray:
    """Where the columns' tokens occur, less the places of the clashing form."""
    found = tokens.occurrences(columns)
    return found if clash == NO_CLASH else found[field.forms[found] != clash]


def _column_counts(tokens: _Tokens, columns: list[int]) -> tuple[np.ndarray, np.ndarray]:
    if len(columns) == 1:  # read off the compressed column: slicing the matrix costs more
        matrix = tokens.matrix
        start, end = matrix.indptr[columns[0]], matrix.indptr[columns[0] + 1]
        return (
            matrix.indices[start:end].astype(np.int64),
            matrix.data[start:end].astype(np.float64),
        )
    summed = np.asarray(tokens.matrix[:, columns].sum(axis=1)).ravel()
    rows = np.flatnonzero(summed)
    return rows.astype(np.int64), summed[rows]


def _near_counts(
    tokens: _Tokens, occurrences: list[np.ndarray], window: int
) -> tuple[np.ndarray, np.ndarray]:
    """Papers where the words occur near each other, and how many times: the occurrences
    of the rarest word that have each other word less than ``window`` tokens away, in
    the same paper."""
    anchor = min(range(len(occurrences)), key=lambda k: len(occurrences[k]))
    anchors = occurrences[anchor]
    rows = tokens.row_at[anchors]
    near = np.ones(len(anchors), dtype=bool)
    for k, found in enumerate(occurrences):
        if k == anchor:
            continue
        at = np.searchsorted(found, anchors)  # the first occurrence at or after the anchor
        after = found[np.minimum(at, len(found) - 1)]
        before = found[np.maximum(at - 1, 0)]
        follows = (at < len(found)) & (after - anchors < window) & (tokens.row_at[after] == rows)
        precedes = (at > 0) & (anchors - before < window) & (tokens.row_at[before] == rows)
        near &= follows | precedes
    return _runs(rows[near])


def _runs(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of ascending ``rows`` and how often each occurs (np.unique
    without its sort: occurrences are found in reading order, so rows come sorted)."""
    if not len(rows):
        return rows.astype(np.int64), np.zeros(0)
    first = np.flatnonzero(np.concatenate(([True], rows[1:] != rows[:-1])))
    counts = np.diff(np.append(first, len(rows)))
    return rows[first].astype(np.int64), counts.astype(np.float64)
