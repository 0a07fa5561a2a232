"""Merge two listings of the same paper into one, keeping the richest fields of each.

Pure. The rules follow what each source is good at: arXiv and Hugging Face know the id,
the full title and every author; page captures cut abstracts short and only count
authors; counters (upvotes, stars) only grow, so the larger one is the fresher.
"""

from __future__ import annotations

from dataclasses import replace

from digest.models import Paper


def merge_papers(old: Paper, new: Paper) -> Paper:
    """One paper with the best of ``old`` (already stored) and ``new`` (just listed)."""
    title_from = new if new.arxiv_id and not old.arxiv_id else old
    abstract_from = new if len(new.abstract) > len(old.abstract) else old
    return replace(
        old,
        title=title_from.title or old.title or new.title,
        title_raw=title_from.title_raw or old.title_raw or new.title_raw,
        abstract=abstract_from.abstract,
        abstract_raw=abstract_from.abstract_raw,
        arxiv_id=old.arxiv_id or new.arxiv_id,
        version=_max(old.version, new.version),
        authors=new.authors if len(new.authors) > len(old.authors) else old.authors,
        author_count=_max(old.author_count, new.author_count),
        categories=tuple(dict.fromkeys((*old.categories, *new.categories))),
        published=min(d for d in (old.published, new.published) if d)
        if (old.published or new.published)
        else None,
        url=old.url or new.url,
        pdf_url=old.pdf_url or new.pdf_url,
        doi=old.doi or new.doi,
        journal_ref=new.journal_ref or old.journal_ref,
        comment=new.comment or old.comment,
        announce_type=old.announce_type or new.announce_type,
        upvotes=_max(old.upvotes, new.upvotes),
        comments=_max(old.comments, new.comments),
        github_repo=new.github_repo or old.github_repo,
        github_stars=_max(old.github_stars, new.github_stars),
        project_page=new.project_page or old.project_page,
        ai_summary=new.ai_summary or old.ai_summary,
        ai_keywords=new.ai_keywords or old.ai_keywords,
        sources=tuple(dict.fromkeys((*old.sources, *new.sources))),
    )


def _max(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)
