"""Score candidate papers for many profiles at once: BM25F over title and abstract, plus signals.

Pure: profiles, the analysed corpus and their candidates in; a Ranking per profile out.
For each part of each keyword of each interest (see Term.parts), BM25F gives points where
it occurs (title weighted above abstract, each normalised by its length, saturated,
scaled by IDF); an interest adds them up, and a paper belongs to the interest it scores
best in. Authors, categories, popularity and similarity to liked papers add points of
their own. Papers a reader rated up are liked papers; papers rated down lower similar
papers a little (``Weights.disliked``), and a model of all the reader's ratings
(rank.learn, kept or fitted in rank.rated) moves papers up or down, in order only: a
paper the profile wants is still eligible however much it resembles one the reader rated
down.

Readers owed the same candidates are scored together: their interests' parts become a
sparse interest x term matrix, and one product with the term x candidate points (see
TermTable) gives every interest's score for every candidate. Only choosing each reader's
papers runs per reader; explanations (every point as a Match) are built for the papers
kept, all at once, and on demand for the others. Ties are broken by the order papers
were first stored in: the same inputs always give the same order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

from digest.models import Match, Scored, StoredPaper
from digest.rank.corpus import Corpus
from digest.rank.expand import expand
from digest.rank.keywords import InterestParts
from digest.rank.learn import Taste
from digest.rank.matches import LIKED_THRESHOLD, keyword_matches, rated_up, signal_matches
from digest.rank.parts import KINDS, keyword_parts
from digest.rank.profile import Profile, Term
from digest.rank.rated import Meanings, RatingsModels
from digest.rank.similar import Similarity, neighbours
from digest.rank.table import TermTable

CHUNK = 512  # readers scored together: bounds the dense interest x candidate scores
# A word found in more than this share of the recent papers ("model", "learning") does
# not, on its own, make a paper worth a place: the score cut leaves out papers that match
# nothing but such words. Any rarer word of a keyword does (a phrase matched only in part
# ranks lower, but stays in).
COMMON_SHARE = 0.5
# The score cut also measures a paper against the best of its day: it needs at least
# Weights.floor of the mean score of the interest's CUT_TOP best candidates.
CUT_TOP = 10


@dataclass(frozen=True, slots=True)
class Weights:
    """The scoring constants, in one value so they can be compared side by side.

    The BM25F defaults are textbook values (BM25's k1 and b, a sequential dependence
    model's mix of phrase, proximity and word evidence), not fitted to any labelled set;
    the expansion's and the cut's were chosen on benchmarks/relevance, each interest
    left out in turn (see its README).
    """

    k1: float = 1.2
    b_title: float = 0.3  # titles are all short: little length normalisation
    b_abstract: float = 0.75
    title: float = 2.5  # BM25F field weights
    abstract: float = 1.0
    phrase: float = 1.0  # how much each way of matching a keyword counts (Term.parts)
    near: float = 0.5
    word: float = 1.0  # shared by the words of a phrase: a keyword counts once
    author: float = 3.0
    category: float = 1.0
    liked: float = 6.0  # times the cosine similarity to the closest liked paper
    disliked: float = 2.0  # minus this times the similarity to the closest paper rated down
    # The reader's ratings' model (rank.learn): its standardised score, times this share
    # of the mean score of the reader's CUT_TOP best candidates, at FULL_AT ratings.
    taste: float = 0.5
    stars_share: float = 0.5  # GitHub stars count half as much as upvotes
    # Score regularisation: a paper gains this share of the keyword points of its
    # neighbour_count closest candidates (their mean, weighted by TF-IDF cosine), so
    # that a paper among papers on the interest ranks above one that only mentions it.
    neighbours: float = 1.0
    neighbour_count: int = 20
    # Query expansion (rank.expand): how many of the interest's keywords the related words
    # weigh together, how many of its best papers it learns them from, how many it adds.
    related: float = 6.0
    feedback_docs: int = 20
    related_terms: int = 40
    # The score cut: the share of the mean score of an interest's CUT_TOP best candidates
    # a paper needs to be kept (0: no such cut).
    floor: float = 0.1

    def b(self, name: str) -> float:
        return self.b_title if name == "title" else self.b_abstract

    def part(self, keyword: Term, kind: str) -> float:
        if kind == "word":
            return self.word / len(keyword.words)
        return self.near if kind == "near" else self.phrase


DEFAULT_WEIGHTS = Weights()


# Why a candidate is not eligible, the first that holds (Ranking.left_out): 0 is eligible.
LEFT_OUT = (
    "",
    "an excluded word matches",
    "none of the required words is in it",
    "it comes from none of the reader's sources",
    "it is in none of the reader's categories",
    "no keyword's phrase, words near each other or uncommon word matches",
    "its own keyword points are below the day's floor",
    "its score is below min_score",
)
EXCLUDED = LEFT_OUT.index("an excluded word matches")
REQUIRED_MISSING = LEFT_OUT.index("none of the required words is in it")
BELOW_FLOOR = LEFT_OUT.index("its own keyword points are below the day's floor")
BELOW_MIN_SCORE = LEFT_OUT.index("its score is below min_score")


@dataclass(frozen=True, slots=True)
class Request:
    """One reader's ranking to do: their profile, candidates and liked papers (those of
    the config, then those rated up, whose uids ``rated`` holds), papers rated down, and
    the model of their ratings kept from an earlier run, if any (used when it was fitted
    on the same ratings)."""

    profile: Profile
    candidates: Sequence[StoredPaper]
    liked: Sequence[StoredPaper] = ()
    rated: frozenset[int] = frozenset()
    disliked: Sequence[StoredPaper] = ()
    taste: Taste | None = None


@dataclass(slots=True)
class Ranking:
    """The digest's papers (best first, grouped by interest) and every candidate's score;
    ``fitted``: the model of the reader's ratings fitted for it, to keep (None when there
    was none to fit, or the kept one served)."""

    selected: list[Scored]
    candidates: Sequence[StoredPaper] = ()
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    eligible: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    _explain: Callable[[list[int]], list[Scored]] | None = None
    fitted: Taste | None = None
    # Why each candidate that is not eligible is not (LEFT_OUT's reasons; 0 for those that
    # are), and the points a keyword match had to reach that day: the floor of the
    # candidate's best interest.
    left_out: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))
    floors: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def considered(self) -> list[Scored]:
        """The candidates not kept, scored and explained (built on demand), in stored order."""
        if self._explain is None:
            return []
        kept = {item.paper.uid for item in self.selected}
        others = sorted(
            (i for i, paper in enumerate(self.candidates) if paper.uid not in kept),
            key=lambda i: self.candidates[i].uid,
        )
        return self._explain(others)


def rank(
    profile: Profile,
    corpus: Corpus,
    candidates: Sequence[StoredPaper],
    liked: Sequence[StoredPaper] = (),
    weights: Weights = DEFAULT_WEIGHTS,
) -> Ranking:
    """Score every candidate for one profile; keep the best ``max_papers`` that are eligible."""
    return rank_many([Request(profile, candidates, liked)], corpus, weights)[0]


def rank_many(
    requests: Sequence[Request],
    corpus: Corpus,
    weights: Weights = DEFAULT_WEIGHTS,
    meanings: Meanings | None = None,
    features: str = "tfidf",
) -> list[Ranking]:
    """``rank`` for many readers, the same result as one by one, scored in batches;
    with ``meanings``, the model of each reader's ratings learns on them too (and
    ``features`` names them, e.g. "tfidf+" and the model: a kept model of ratings
    fitted on other features is fitted again)."""
    results = [Ranking([]) for _ in requests]
    groups: dict[int, list[int]] = {}
    for k, request in enumerate(requests):
        if request.candidates:
            groups.setdefault(id(request.candidates), []).append(k)
    for members in groups.values():
        table = corpus.table(requests[members[0]].candidates, weights)
        for start in range(0, len(members), CHUNK):
            chunk = members[start : start + CHUNK]
            for k, ranking in zip(
                chunk,
                _Batch(table, [requests[k] for k in chunk], meanings, features).rank(),
                strict=True,
            ):
                results[k] = ranking
    return results


def terms_of(requests: Sequence[Request], weights: Weights = DEFAULT_WEIGHTS) -> list[Term]:
    """Every distinct term the requests' profiles are scored by (keyword parts, terms to
    exclude or require): what to analyse before ranking them."""
    # By identity: readers' profiles share the very Term objects of a keyword (parsing is
    # cached), and every object here stays alive while this runs.
    keywords: dict[int, Term] = {}
    others: dict[int, Term] = {}
    for request in requests:
        profile = request.profile
        for interest in profile.interests:
            keywords.update((id(k), k) for k in interest.keywords)
            others.update((id(t), t) for t in (*interest.exclude, *interest.require))
        others.update((id(t), t) for t in (*profile.exclude, *profile.require))
    found: dict[tuple[str, tuple[str, ...], int], Term] = {}
    for keyword in keywords.values():  # readers share keywords: parts listed once
        for part in keyword_parts(keyword, weights):
            found.setdefault(part.term.identity, part.term)
    for term in others.values():
        found.setdefault(term.identity, term)
    return list(found.values())


@dataclass(slots=True)
class _Choice:
    """One reader's scores, and which of their interests each candidate belongs to."""

    scores: np.ndarray
    eligible: np.ndarray
    best: np.ndarray  # the reader's interest each candidate scored best in
    keyworded: np.ndarray  # whether it has keyword points there (not blocked, not zero)
    order: np.ndarray  # the chosen candidates, best first
    similarity: np.ndarray
    closest: np.ndarray
    against: np.ndarray  # similarity to the closest paper rated down
    nearest: np.ndarray  # which one
    taste: np.ndarray | None  # points from the model of the reader's ratings
    fondest: np.ndarray  # which paper rated up each candidate is closest to (the model's)
    lent: np.ndarray  # points from its closest candidates' keyword points
    lender: np.ndarray  # the candidate among them that lends most
    left_out: np.ndarray  # why it is not eligible (LEFT_OUT), 0 when it is
    floors: np.ndarray  # the floor of its best interest


class _Batch:
    """Readers with the same candidates, scored together."""

    def __init__(
        self,
        table: TermTable,
        requests: Sequence[Request],
        meanings: Meanings | None = None,
        features: str = "tfidf",
    ) -> None:
        self.table = table
        self.weights = table.weights
        self.requests = requests
        self.parts = InterestParts(table.keywords)
        self.first_row: list[int] = []  # each reader's first interest row
        exclude: list[tuple[int, int]] = []
        require: list[tuple[int, int]] = []
        related = iter(
            expand(
                table.corpus,
                [i for request in requests for i in request.profile.interests],
                self.weights,
            )
        )
        for s, request in enumerate(requests):
            self.first_row.append(self.parts.rows)
            for interest in request.profile.interests:
                self.parts.add_interest(interest, next(related))
                for term in (*interest.exclude, *interest.require):
                    table.add(term)
            exclude += [(s, table.add(term)) for term in request.profile.exclude]
            require += [(s, table.add(term)) for term in request.profile.require]
        self.first_row.append(self.parts.rows)
        self.similarity = Similarity(
            table.corpus,
            table.candidates,
            [p for request in requests for p in (*request.liked, *request.disliked)],
        )
        self.models = RatingsModels(
            self.similarity, table.candidates, self.weights.taste, meanings, features
        )
        points = table.matrix()
        parts = self.parts.arrays()
        rows = np.repeat(np.arange(parts.rows), np.diff(parts.ptr))
        self.totals = (self._matrix(rows, parts.term, parts.weight) @ points).toarray()
        # What its closest candidates score (rank.similar.neighbours) adds to a paper's.
        self.neighbours = (
            neighbours(table.corpus, table.candidates, self.weights.neighbour_count)
            if self.weights.neighbours > 0
            else None
        )
        self.keyword_totals = self.totals
        if self.neighbours is not None:
            lent = (self.neighbours.matrix @ self.totals.T).T
            self.totals = self.totals + self.weights.neighbours * lent
        # A phrase, its words near each other, or a word (one of its own, or one related
        # to the interest: rank.expand) that is not common make a paper relevant, if it
        # scores past the interest's floor; a common word alone only adds points.
        common = table.idf[parts.term] < table.corpus.idf_of_share(COMMON_SHARE)
        strong = (parts.kind < KINDS.index("word")) | ~common
        self.strong = self._hits(rows[strong], parts.term[strong], parts.rows, points)
        self.floors = self.weights.floor * _mean_of_best(self.keyword_totals, CUT_TOP)
        self.excluded = self._hits(*_columns(exclude), len(requests), points)
        self.required = self._hits(*_columns(require), len(requests), points)

    def _matrix(
        self, rows: object, terms: object, values: object, height: int = 0
    ) -> sparse.csr_matrix:
        shape = (height or self.parts.rows, len(self.table))
        return sparse.csr_matrix((values, (rows, terms)), shape=shape)

    def _hits(
        self, rows: Sequence[int], terms: Sequence[int], height: int, points: sparse.csr_matrix
    ) -> np.ndarray:
        """row x candidate: whether the candidate holds any of the row's terms (where a
        term occurs, its points are above zero)."""
        if not len(rows):
            return np.zeros((height, self.table.n), dtype=bool)
        wanted = self._matrix(rows, terms, np.ones(len(rows)), height)
        return (wanted @ points).toarray() > 0

    def rank(self) -> list[Ranking]:
        choices = [self._choose(s, request) for s, request in enumerate(self.requests)]
        # Explain every chosen paper of every reader in one go.
        chosen = [
            (
                choice.order.tolist(),
                choice.best[choice.order].tolist(),
                choice.keyworded[choice.order].tolist(),
            )
            for choice in choices
        ]
        rows = [
            self.first_row[s] + best
            for s, (_order, bests, keyworded) in enumerate(chosen)
            for best, has in zip(bests, keyworded, strict=True)
            if has
        ]
        columns = [
            i
            for order, _bests, keyworded in chosen
            for i, has in zip(order, keyworded, strict=True)
            if has
        ]
        found, totals = keyword_matches(
            self.table,
            self.parts,
            np.array(rows, dtype=np.int64),
            np.array(columns, dtype=np.int64),
            self.weights,
        )
        explained = iter(zip(found, totals, strict=True))  # chosen papers with keyword points
        rankings = []
        for s, (request, choice, (order, bests, keyword)) in enumerate(
            zip(self.requests, choices, chosen, strict=True)
        ):
            names = [interest.name for interest in request.profile.interests]
            signals = _has_signals(request)
            papers = []
            for i, best, has in zip(order, bests, keyword, strict=True):
                matches, total = next(explained) if has else ([], 0.0)
                extra = _lent_matches(request, choice, i)
                if signals:
                    extra += _signal_matches(self.table, request, choice, i)
                if extra:
                    matches = matches + extra
                    for match in extra:  # added in order, as sum() over all matches would
                        total += match.points
                score = round(total, 4)
                papers.append(Scored(request.candidates[i], score, tuple(matches), names[best]))
            rankings.append(
                Ranking(
                    _by_section(papers),
                    request.candidates,
                    choice.scores,
                    choice.eligible,
                    _Explainer(self.table, request, choice),
                    self.models.fitted.get(s),
                    choice.left_out,
                    choice.floors,
                )
            )
        return rankings

    def _choose(self, s: int, request: Request) -> _Choice:
        profile, table, weights = request.profile, self.table, self.weights
        n = table.n
        first, last = self.first_row[s], self.first_row[s + 1]
        totals, strong = self.totals[first:last], self.strong[first:last]
        floors = self.floors[first:last]
        several = last - first > 1
        for k, interest in enumerate(profile.interests):
            if interest.exclude or interest.require:
                blocked = table.any_of(interest.exclude)
                if interest.require:
                    blocked |= ~table.any_of(interest.require)
                totals[k, blocked] = -np.inf if several else 0.0
        if several:
            best = np.argmax(totals, axis=0)
            everyone = np.arange(n)
            keyword_points = np.maximum(totals[best, everyone], 0.0)
            relevant = strong[best, everyone]
        else:
            best = np.zeros(n, dtype=np.int64)
            keyword_points = np.maximum(totals[0], 0.0)
            relevant = strong[0]
        lent, lender = self._lent(first, last, best, keyword_points)
        matched = relevant
        # A paper's own keyword points must pass the floor: its neighbours only order it.
        relevant = relevant & (keyword_points - lent >= floors[best])

        signals = np.zeros(n)
        signalled = np.zeros(n, dtype=bool)  # authors or liked papers make a paper eligible
        for name in profile.authors:
            hit = _mask(table.corpus.rows_by_author(name), table.position, n)
            signals += weights.author * hit
            signalled |= hit
        wanted = {c.lower() for c in profile.categories}
        in_category = np.zeros(n, dtype=bool)
        for category in wanted:
            in_category |= _mask(table.corpus.rows_in_category(category), table.position, n)
        if profile.category_mode == "boost":
            signals += weights.category * in_category
        if profile.popularity_weight > 0:
            corpus, rows = table.corpus, table.rows
            signals += profile.popularity_weight * (
                np.log1p(corpus.upvotes[rows]) + weights.stars_share * np.log1p(corpus.stars[rows])
            )
        similarity, closest = self.similarity.closest(request.liked)
        liked_hit = similarity > LIKED_THRESHOLD
        signals += np.where(liked_hit, weights.liked * similarity, 0.0)
        signalled |= liked_hit
        against, nearest = self.similarity.closest(request.disliked)
        penalty = np.where(against > LIKED_THRESHOLD, weights.disliked * against, 0.0)

        wanted_by = np.round(keyword_points + signals, 4)  # what makes a paper eligible
        sources = set(profile.sources)
        from_sources = (
            np.array([bool(sources & set(p.paper.sources)) for p in request.candidates])
            if sources
            else None
        )
        in_categories = None
        if profile.category_mode == "keep" and wanted:
            unknown = np.array([not p.paper.categories for p in request.candidates])
            in_categories = in_category | unknown
        # In LEFT_OUT's order; None: a test that does not apply to this reader.
        tests = [
            ~self.excluded[s],
            self.required[s] if profile.require else None,
            from_sources,
            in_categories,
        ]
        if profile.takes_everything:
            tests += [None, None, wanted_by >= profile.min_score]
        else:
            tests += [matched | signalled, relevant | signalled]
            tests.append(wanted_by > max(profile.min_score, 0.0))
        eligible, left_out = _first_failing(tests, n)
        taste = None
        if request.rated:
            taste = self.models.points(s, request, _scale(wanted_by[eligible]))
        fondest = np.zeros(n, dtype=np.int64)
        if taste is not None:  # the paper rated up its explanation names
            fondest = self.similarity.closest(_rated_up(request))[1]
        if request.disliked or taste is not None:  # they order papers, never choose them
            scores = np.round(keyword_points + signals - penalty + _or_zero(taste), 4)
        else:
            scores = wanted_by

        chosen = np.flatnonzero(eligible)
        if len(chosen) > profile.max_papers:  # only those that can make the cut are sorted
            cut = np.partition(scores[chosen], len(chosen) - profile.max_papers)[
                len(chosen) - profile.max_papers
            ]
            chosen = chosen[scores[chosen] >= cut]
        uids = table.corpus.uids[table.rows[chosen]]
        order = chosen[np.lexsort((uids, -scores[chosen]))][: profile.max_papers]
        # An interest whose exclusions or requirements blocked a paper gives it nothing.
        return _Choice(
            scores,
            eligible,
            best,
            keyword_points > 0,
            order,
            similarity,
            closest,
            against,
            nearest,
            taste,
            fondest,
            lent,
            lender,
            left_out,
            floors[best],
        )

    def _lent(
        self, first: int, last: int, best: np.ndarray, keyword_points: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The points each candidate's neighbours lend it in its best interest (none
        where that interest blocks it), and the neighbour that lends most."""
        n = self.table.n
        if self.neighbours is None:
            return np.zeros(n), np.zeros(n, dtype=np.int64)
        everyone = np.arange(n)
        own = np.maximum(self.keyword_totals[first:last], 0.0)
        lent = np.maximum(keyword_points - own[best, everyone], 0.0)
        columns = self.neighbours.columns
        shares = self.neighbours.weights * own[best[:, None], columns]
        return lent, columns[everyone, shares.argmax(axis=1)]


class _Explainer:
    """Explains any of one reader's candidates, later (see ``Ranking.considered``)."""

    def __init__(self, table: TermTable, request: Request, choice: _Choice) -> None:
        self.table, self.request, self.choice = table, request, choice

    def __call__(self, indices: list[int]) -> list[Scored]:
        parts = InterestParts(self.table.keywords)  # this reader's interests: rows 0, 1, ...
        interests = self.request.profile.interests
        for interest, related in zip(
            interests, expand(self.table.corpus, interests, self.table.weights), strict=True
        ):
            parts.add_interest(interest, related)
        keyworded = [i for i in indices if self.choice.keyworded[i]]
        explained, _totals = keyword_matches(
            self.table,
            parts,
            self.choice.best[keyworded].astype(np.int64),
            np.array(keyworded, dtype=np.int64),
            self.table.weights,
        )
        found = dict(zip(keyworded, explained, strict=True))
        return [
            _scored(self.table, self.request, self.choice, i, found.get(i, [])) for i in indices
        ]


def _scored(
    table: TermTable, request: Request, choice: _Choice, i: int, matches: list[Match]
) -> Scored:
    matches = matches + _lent_matches(request, choice, i)
    if _has_signals(request):
        matches = matches + _signal_matches(table, request, choice, i)
    score = round(sum(m.points for m in matches), 4)
    section = request.profile.interests[int(choice.best[i])].name
    return Scored(request.candidates[i], score, tuple(matches), section)


def _has_signals(request: Request) -> bool:
    profile = request.profile
    return bool(
        profile.authors
        or profile.categories
        or profile.popularity_weight > 0
        or request.liked
        or request.disliked
    )


def _signal_matches(table: TermTable, request: Request, choice: _Choice, i: int) -> list[Match]:
    return signal_matches(
        request.profile,
        table,
        request.candidates[i],
        int(table.rows[i]),
        table.weights,
        float(choice.similarity[i]),
        int(choice.closest[i]),
        request.liked,
        rated=request.rated,
        against=float(choice.against[i]),
        nearest=int(choice.nearest[i]),
        disliked=request.disliked,
        taste=0.0 if choice.taste is None else float(choice.taste[i]),
        fondest=int(choice.fondest[i]),
    )


def _first_failing(tests: list[np.ndarray | None], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Which candidates pass every test (None: a test that does not apply), and for each
    of the others the number (from 1) of the first test it fails."""
    eligible = np.ones(n, dtype=bool)
    left_out = np.zeros(n, dtype=np.int8)
    for number, passed in enumerate(tests, start=1):
        if passed is None:
            continue
        failing = eligible & ~passed
        left_out[failing] = number
        eligible &= passed
    return eligible, left_out


def _lent_matches(request: Request, choice: _Choice, i: int) -> list[Match]:
    """What a paper's closest candidates lend it, naming the one that lends most."""
    points = round(float(choice.lent[i]), 4)
    if points <= 0:
        return []
    lender = request.candidates[int(choice.lender[i])].paper.title
    return [Match(lender, "neighbours", 1, points, "signal")]


def _rated_up(request: Request) -> list[StoredPaper]:
    return rated_up(request.liked, request.rated)


def _or_zero(points: np.ndarray | None) -> np.ndarray | float:
    return 0.0 if points is None else points


def _scale(eligible_scores: np.ndarray) -> float:
    """The size of a reader's best scores, which the model of its ratings' points take."""
    if not len(eligible_scores):
        return 1.0
    return float(_mean_of_best(eligible_scores[None, :], CUT_TOP)[0])


def _mean_of_best(totals: np.ndarray, k: int) -> np.ndarray:
    """Each row's mean of its ``k`` highest values (of all, when it has fewer)."""
    if not totals.size:
        return np.zeros(totals.shape[0])
    k = min(k, totals.shape[1])
    best = np.partition(totals, totals.shape[1] - k, axis=1)[:, totals.shape[1] - k :]
    return np.maximum(best, 0.0).mean(axis=1)


def _columns(pairs: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    return [row for row, _term in pairs], [term for _row, term in pairs]


def _mask(found: set[int], position: np.ndarray, n: int) -> np.ndarray:
    hit = np.zeros(n, dtype=bool)
    if found:
        at = position[np.fromiter(found, dtype=np.int64)]
        hit[at[at >= 0]] = True
    return hit


def _by_section(best_first: list[Scored]) -> list[Scored]:
    """Digest order: papers grouped by interest, groups in the order of their best paper."""
    groups: dict[str | None, list[Scored]] = {}
    for item in best_first:
        groups.setdefault(item.section, []).append(item)
    return [item for group in groups.values() for item in group]
