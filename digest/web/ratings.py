"""Ratings: "more like this" and "less like this" from a paper's links
(``/rate/<token>/up|down``, the token's subject the paper's store id), and a reader's
list of them (``/ratings/<token>``), each with a button that clears it.

A vote is a POST (GET shows the paper and one button, so a prefetching mail scanner
votes nothing); the last vote on a paper wins, and the ranking reads them as the
reader's liked (and disliked) papers.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from digest.models import StoredPaper
from digest.web.site import Who, not_found, now, page, reader_of, store

pages = Blueprint("ratings", __name__)

VOTES = {"up": 1, "down": -1, "clear": None}
MAX_PAPER_ID_DIGITS = 18


def _paper(subject: str) -> StoredPaper | None:
    """The stored paper a rating token or form names, if it exists."""
    if not subject.isascii() or not subject.isdigit() or len(subject) > MAX_PAPER_ID_DIGITS:
        return None
    found = store().get_papers([int(subject)])
    return found[0] if found else None


def _rated(token: str) -> tuple[Who, StoredPaper] | None:
    found = reader_of(token, "rate")
    if found is None:
        return None
    paper = _paper(found[1])
    return None if paper is None else (found[0], paper)


@pages.get("/rate/<token>/<vote>")
def rate_page(token: str, vote: str) -> Response:
    rated = _rated(token) if vote in ("up", "down") else None
    if rated is None:
        return not_found()
    return page("rate", token=token, vote=vote, paper=rated[1].paper, done=False)


@pages.post("/rate/<token>/<vote>")
def rate(token: str, vote: str) -> Response:
    rated = _rated(token) if vote in VOTES else None
    if rated is None:
        return not_found()
    who, stored = rated
    store().rate(who.name, stored.uid, VOTES[vote], "web", now())  # type: ignore[arg-type]
    return page("rate", token=token, vote=vote, paper=stored.paper, done=True)


@pages.get("/ratings/<token>")
def ratings_page(token: str) -> Response:
    found = reader_of(token, "ratings")
    if found is None:
        return not_found()
    return _list(token, found[0].name)


@pages.post("/ratings/<token>")
def clear_rating(token: str) -> Response:
    found = reader_of(token, "ratings")
    if found is None:
        return not_found()
    paper = _paper(request.form.get("paper", ""))
    if paper is None:
        return not_found()
    store().rate(found[0].name, paper.uid, None, "web", now())
    return _list(token, found[0].name)


def _list(token: str, name: str) -> Response:
    return page("ratings", token=token, ratings=store().ratings_of(name))
