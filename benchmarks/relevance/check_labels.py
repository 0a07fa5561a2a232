"""Check the relevance labels in this folder against the papers they grade.

Re-enumerates, with the project's own parsers, the papers of the captures in
../shared/seeds beside the repository (or the folder given as the first argument) and of
the recorded daily listings in the ``fixtures`` folder beside it, and verifies that:

* there are 226 distinct seed papers, identified as CAPTURE:INDEX by the first capture
  (in file order) whose listing holds the paper's normalised title, and 264 distinct
  listed papers, identified as listings.py says;
* interests.toml has 6 to 12 interests with 3 to 10 keywords each;
* qrels.tsv (the seeds) and qrels-listings.tsv (the listings) have the expected header,
  one line per (interest, paper), sorted by interest (in interests.toml order) then by
  the papers' order, every title_sha1 matching the paper it names, grades in {0, 1, 2};

then prints the number of papers graded 2, 1 and 0 per interest in each. Exits non-zero
on any problem. Standard library and the digest package only.

Usage: python benchmarks/relevance/check_labels.py [SEEDS_DIR]
"""

from __future__ import annotations

import hashlib
import sys
import tomllib
from datetime import date
from pathlib import Path

from listings import load_listing_papers

from digest.sources.parse.page_text import parse_page_text

HERE = Path(__file__).resolve().parent
DEFAULT_SEEDS = HERE.parents[2] / "shared" / "seeds"  # ../shared beside the repository
EXPECTED_PAPERS = 226
EXPECTED_LISTINGS = 264
TODAY = date(2026, 11, 22)
HEADER = ["interest", "paper", "title_sha1", "grade", "note"]


def title_sha1(title_key: str) -> str:
    return hashlib.sha1(title_key.encode("utf-8")).hexdigest()[:12]


def enumerate_papers(seeds: Path) -> dict[str, str]:
    """Paper id -> title_sha1, ids assigned by first appearance in file order."""
    ids: dict[str, str] = {}
    seen: set[str] = set()
    files = sorted(seeds.glob("*.txt"))
    if not files:
        raise SystemExit(f"no captures (*.txt) in {seeds}")
    for path in files:
        listing = parse_page_text(path.read_text(encoding="utf-8"), path.name, today=TODAY)
        capture = path.name[:3]
        for index, paper in enumerate(listing.papers):
            if paper.title_key in seen:
                continue
            seen.add(paper.title_key)
            ids[f"{capture}:{index}"] = title_sha1(paper.title_key)
    return ids


def enumerate_listing_papers(fixtures: Path) -> dict[str, str]:
    """Paper id -> title_sha1 of the recorded listings, as listings.py names them."""
    return {
        paper_id: title_sha1(stored.paper.title_key)
        for paper_id, stored in load_listing_papers(fixtures).items()
    }


def check_interests() -> tuple[list[str], list[str]]:
    """interests.toml's interest names, and its problems."""
    errors: list[str] = []
    config = tomllib.loads((HERE / "interests.toml").read_text(encoding="utf-8"))
    interests = config.get("interests", [])
    names = [interest.get("name", "") for interest in interests]
    if not 6 <= len(names) <= 12:
        errors.append(f"expected 6 to 12 interests, found {len(names)}")
    if len(set(names)) != len(names):
        errors.append("interest names are not unique")
    for interest in interests:
        keywords = interest.get("keywords", [])
        if not 3 <= len(keywords) <= 10:
            errors.append(f"{interest.get('name')}: {len(keywords)} keywords, expected 3 to 10")
        if not str(interest.get("description", "")).strip():
            errors.append(f"{interest.get('name')}: missing description")
    return names, errors


def check_qrels(
    path: Path, papers: dict[str, str], names: list[str]
) -> tuple[dict[str, dict[int, int]], list[str]]:
    """The grade counts per interest of one qrels file, and its problems: every pair of
    an interest and a paper once, sorted by interest then by the papers' order."""
    errors: list[str] = []
    if not path.is_file():
        return {name: {2: 0, 1: 0, 0: 0} for name in names}, [f"{path}: no such file"]
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].split("\t") != HEADER:
        errors.append(f"{path.name}: header must be {HEADER!r}")
        lines = lines[:1]
    rows: list[tuple[str, str]] = []
    counts = {name: {2: 0, 1: 0, 0: 0} for name in names}
    graded: dict[str, set[str]] = {name: set() for name in names}
    for number, line in enumerate(lines[1:], start=2):
        where = f"{path.name}:{number}"
        fields = line.split("\t")
        if len(fields) != 5:
            errors.append(f"{where}: expected 5 tab-separated fields, got {len(fields)}")
            continue
        interest, paper, sha, grade, _note = fields
        if interest not in graded:
            errors.append(f"{where}: unknown interest {interest!r}")
            continue
        if paper not in papers:
            errors.append(f"{where}: unknown paper id {paper!r}")
            continue
        if sha != papers[paper]:
            errors.append(f"{where}: title_sha1 {sha} does not match {paper} ({papers[paper]})")
        if grade not in {"0", "1", "2"}:
            errors.append(f"{where}: grade {grade!r} is not 0, 1 or 2")
            continue
        if paper in graded[interest]:
            errors.append(f"{where}: duplicate pair ({interest}, {paper})")
        graded[interest].add(paper)
        counts[interest][int(grade)] += 1
        rows.append((interest, paper))

    for name in names:
        missing = [paper for paper in papers if paper not in graded[name]]
        if missing:
            errors.append(f"{name}: {len(missing)} papers without a grade, e.g. {missing[:5]}")

    interest_order = {name: position for position, name in enumerate(names)}
    paper_order = {paper: position for position, paper in enumerate(papers)}
    keys = [(interest_order[interest], paper_order[paper]) for interest, paper in rows]
    if keys != sorted(keys):
        errors.append(f"{path.name} is not sorted by interest, then by the papers' order")
    return counts, errors


def main(argv: list[str]) -> int:
    seeds = Path(argv[1]) if len(argv) > 1 else DEFAULT_SEEDS
    fixtures = seeds.parent / "fixtures"
    names, errors = check_interests()
    sets = {
        "qrels.tsv": (enumerate_papers(seeds), EXPECTED_PAPERS, seeds),
        "qrels-listings.tsv": (enumerate_listing_papers(fixtures), EXPECTED_LISTINGS, fixtures),
    }
    for qrels, (papers, expected, source) in sets.items():
        if len(papers) != expected:
            errors.append(f"{source}: expected {expected} distinct papers, found {len(papers)}")
        if len(set(papers.values())) != len(papers):
            errors.append(f"{source}: two papers share a title_sha1")
        counts, problems = check_qrels(HERE / qrels, papers, names)
        errors += problems
        print(f"{qrels}: {len(papers)} distinct ids from {source}")
        print(f"{'interest':<28} {'2':>4} {'1':>4} {'0':>4}")
        for name in names:
            c = counts[name]
            print(f"{name:<28} {c[2]:>4} {c[1]:>4} {c[0]:>4}")
        print()

    if errors:
        print(f"FAILED: {len(errors)} problem(s)", file=sys.stderr)
        for error in errors[:50]:
            print(f"  - {error}", file=sys.stderr)
        return 1
    print("OK: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
