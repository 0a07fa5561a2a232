"""The machine formats, read from the real responses in ../shared/fixtures."""

from __future__ import annotations

from datetime import date

import pytest

from digest.errors import ParseError
from digest.sources.parse.arxiv_api import parse_arxiv_api
from digest.sources.parse.arxiv_rss import parse_arxiv_rss, split_creators
from digest.sources.parse.detect import Format, detect_format, parse_listing
from digest.sources.parse.hf_json import parse_hf_json


def read(fixtures_dir, name: str) -> bytes:
    return (fixtures_dir / name).read_bytes()


# --- Hugging Face ---------------------------------------------------------------------


def test_daily_papers_ids_dates_and_counters(fixtures_dir):
    listing = parse_hf_json(
        read(fixtures_dir, "hf_daily_papers/daily_papers_2026-06-12_sotawhat.json"), "f"
    )
    assert len(listing.papers) == 30
    assert listing.listed_on == date(2026, 6, 12)
    first = listing.papers[0]
    assert first.arxiv_id == "2606.00467"
    # paper.publishedAt is 2026-05-30T00:00Z; the item's shifted publishedAt says 05-29.
    assert first.published == date(2026, 5, 30)
    assert first.url == "https://huggingface.co/papers/2606.00467"
    assert all(p.arxiv_id and "v" not in p.arxiv_id for p in listing.papers)
    assert all(p.ai_keywords for p in listing.papers)  # every 06-12 paper carries them


def test_hidden_authors_are_left_out(fixtures_dir):
    listing = parse_hf_json(
        read(fixtures_dir, "hf_daily_papers/daily_papers_2026-06-12_sotawhat.json"), "f"
    )
    paper = next(p for p in listing.papers if p.arxiv_id == "2606.12575")
    assert "Dengyang Jiang" not in paper.authors
    assert len(paper.authors) == 9


def test_optional_fields_stay_unknown_when_absent(fixtures_dir):
    raw = read(
        fixtures_dir,
        "hf_daily_papers/daily_papers_limit30_2026-07-31_raw_curl_personalnewsfeed.json",
    )
    listing = parse_hf_json(raw, "f")
    assert len(listing.papers) == 30
    assert all(p.ai_summary is None and p.ai_keywords == () for p in listing.papers)
    with_repo = [p for p in listing.papers if p.github_repo]
    assert with_repo and all(p.github_repo.startswith("https://github.com/") for p in with_repo)


def test_undated_request_spanning_two_days_has_no_single_listing_date(fixtures_dir):
    raw = read(
        fixtures_dir,
        "hf_daily_papers/daily_papers_limit25_2026-07-13_mixed_ai_summary_aiweeklyradar.json",
    )
    listing = parse_hf_json(raw, "f")
    assert len(listing.papers) == 25
    assert listing.listed_on is None


def test_single_paper_and_search_responses(fixtures_dir):
    single = parse_hf_json(
        read(fixtures_dir, "hf_daily_papers/paper_info_api_papers_2608.09888_fastpaper.json"), "f"
    )
    assert [p.arxiv_id for p in single.papers] == ["2608.09888"]
    paper = single.papers[0]
    assert paper.upvotes == 782
    assert "Björn Engdahl" in paper.authors
    assert "$0.0007" in paper.abstract and "\\$" not in paper.abstract  # LaTeX-escaped dollar
    search = parse_hf_json(
        read(fixtures_dir, "hf_daily_papers/papers_search_q_diffusion_3_results_fastpaper.json"),
        "f",
    )
    assert search.papers[0].arxiv_id == "2006.11239"
    assert search.papers[0].title == "Denoising Diffusion Probabilistic Models"


def test_items_without_an_id_are_skipped_with_a_warning():
    listing = parse_hf_json(
        b'[{"paper": {"title": "No id"}}, {"paper": {"id": "2601.00001", "title": "Ok"}}]', "x.json"
    )
    assert [p.arxiv_id for p in listing.papers] == ["2601.00001"]
    assert listing.warnings == ["x.json: item 0: skipped, missing key 'id'"]


# --- arXiv RSS --------------------------------------------------------------------------

MULTI = "arxiv_rss/rss_cs.LG+cs.AI+cs.CL+stat.ML_2026-09-24_new_cross_replace_layareader.xml"


def test_rss_announce_types_versions_and_dates(fixtures_dir):
    listing = parse_arxiv_rss(read(fixtures_dir, MULTI), "f")
    assert listing.listed_on == date(2026, 9, 24)
    summary = [(p.arxiv_id, p.version, p.announce_type) for p in listing.papers]
    assert summary == [
        ("2609.26811", 1, "new"),
        ("2609.26820", 1, "new"),
        ("2205.06398", 2, "cross"),
        ("2009.13987", 3, "replace"),
    ]
    new = listing.papers[0]
    assert new.authors == ("Fabien Polly",)
    assert new.categories == ("cs.LG",)
    assert new.published == date(2026, 9, 24)
    assert new.abstract.startswith("Local learning trains each layer")
    assert "Announce Type" not in new.abstract
    assert listing.papers[3].published is None  # a replacement's date is not its first appearance


def test_rss_creators_split_with_odd_spacing_and_mononyms(fixtures_dir):
    listing = parse_arxiv_rss(
        read(fixtures_dir, "arxiv_rss/rss_cs.CL_2026-04-27_3_items_reserialized_distill.xml"), "f"
    )
    assert listing.papers[0].authors == (
        "Anamta Khan",
        "Ratna Kandala",
        "Deepti",
        "Sheza Munir",
        "Joyojeet Pal",
    )


def test_split_creators_keeps_affiliation_commas_out_of_the_list():
    assert split_creators("A Smith (MIT, CMU), B Jones,  C") == ("A Smith", "B Jones", "C")


def test_saturday_feed_is_empty_not_an_error(fixtures_dir):
    listing = parse_arxiv_rss(
        read(fixtures_dir, "arxiv_rss/rss_cs.CL_2026-08-01_saturday_empty_allnewsai.xml"), "f"
    )
    assert listing.papers == [] and listing.warnings == []
    assert listing.listed_on == date(2026, 8, 1)


def test_rss_error_feed_is_an_error():
    error_feed = (
        b"<?xml version='1.0' encoding='UTF-8'?><rss version='2.0'><channel>"
        b"<title>Feed error for query: cs.XX</title><description>Invalid archive: cs.XX</description>"
        b"</channel></rss>"
    )
    with pytest.raises(ParseError, match=r"Invalid archive: cs\.XX"):
        parse_arxiv_rss(error_feed, "f")


def test_mirror_feeds_yield_arxiv_ids_and_plain_text(fixtures_dir):
    takara = parse_listing(
        read(fixtures_dir, "other/takara_tldr_daily_papers_rss_2026-04-30_brevio.xml"), "f"
    )
    assert len(takara.papers) == 50 and takara.papers[0].arxiv_id == "2604.26238"
    mirror = parse_listing(
        read(
            fixtures_dir,
            "other/hf_daily_papers_community_rss_huangboming_feed_2026-04-30_brevio.xml",
        ),
        "f",
    )
    assert len(mirror.papers) == 22
    assert all("<" not in p.abstract for p in mirror.papers)


# --- arXiv API --------------------------------------------------------------------------


def test_api_new_and_legacy_serialisations(fixtures_dir):
    new = parse_arxiv_api(
        read(
            fixtures_dir,
            "arxiv_api/query_all_attention_OR_mechanism_2026-03_new_format_v2_entries_fastpaper.xml",
        ),
        "f",
    )
    assert new.total_results == 314000
    deja = new.papers[0]
    assert deja.arxiv_id == "2002.00741" and deja.version == 1
    assert deja.title.startswith("Déjà vu:")
    assert deja.categories[0] == "cs.IR"  # the primary category first
    assert deja.pdf_url == "https://arxiv.org/pdf/2002.00741v1"
    assert "\n" not in deja.abstract
    versions = {p.arxiv_id: (p.version, p.published) for p in new.papers}
    assert versions["1102.2017"] == (2, date(2011, 2, 10))  # published is v1's date

    legacy = parse_arxiv_api(
        read(fixtures_dir, "arxiv_api/query_cat_cs.RO_neural_2025-10-17_legacy_format_xiv.xml"), "f"
    )
    rdd = legacy.papers[0]
    assert (
        rdd.title
        == "RDD: Retrieval-Based Demonstration Decomposer for Planner Alignment in Long-Horizon Tasks"
    )
    assert rdd.abstract.startswith("To tackle long-horizon tasks, recent hierarchical")
    assert "  " not in rdd.abstract


def test_api_old_style_ids_doi_and_journal_ref(fixtures_dir):
    old = parse_arxiv_api(
        read(fixtures_dir, "arxiv_api/docs_example_typical_response_hep-ex_0307015_2007.xml"), "f"
    )
    assert old.papers[0].arxiv_id == "hep-ex/0307015"
    legacy = parse_arxiv_api(
        read(
            fixtures_dir,
            "arxiv_api/id_list_1601.00001_2020-09-04_legacy_format_doi_journal_ref_zoia.xml",
        ),
        "f",
    )
    paper = legacy.papers[0]
    assert paper.arxiv_id == "1601.00001" and paper.doi and paper.journal_ref


def test_api_error_entry_is_an_error_not_a_paper(fixtures_dir):
    with pytest.raises(ParseError, match=r"incorrect id format for 1234\.12345"):
        parse_arxiv_api(
            read(fixtures_dir, "arxiv_api/docs_example_error_malformed_id_2007.xml"), "f"
        )


def test_acm_and_msc_codes_are_not_categories(fixtures_dir):
    listing = parse_arxiv_api(
        read(
            fixtures_dir,
            "arxiv_api/query_cat_cs.AI_OR_cs.LG_2026-07-13_new_format_50_entries_aiweeklyradar.xml",
        ),
        "f",
    )
    categories = {c for p in listing.papers for c in p.categories}
    assert categories
    assert all(c[0].islower() and ("." in c or "-" in c) for c in categories)


# --- detection --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("hf_daily_papers/daily_papers_2026-06-12_sotawhat.json", Format.HF_JSON),
        ("hf_daily_papers/paper_info_api_papers_2608.09888_fastpaper.json", Format.HF_JSON),
        (MULTI, Format.ARXIV_RSS),
        ("arxiv_rss/rss_cs.CL_2026-08-01_saturday_empty_allnewsai.xml", Format.ARXIV_RSS),
        ("arxiv_api/query_cat_cs.RO_neural_2025-10-17_legacy_format_xiv.xml", Format.ARXIV_API),
        ("arxiv_api/query_transformer_cs.LG_2026-06-14_new_format_sotawhat.xml", Format.ARXIV_API),
    ],
)
def test_format_is_detected_from_content(fixtures_dir, name, expected):
    assert detect_format(read(fixtures_dir, name), name) is expected


def test_captures_are_detected_as_page_text(seeds):
    assert {detect_format(p.read_bytes(), p.name) for p in seeds} == {Format.PAGE_TEXT}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "a binary file"),
        (b"\xff\xfe\xfa garbage \xc3\x28 bytes" * 10, "not UTF-8 text"),
        (b"<!DOCTYPE html><html><body>503</body></html>", "an HTML page"),
        (b"<?xml version='1.0'?><PubmedArticleSet/>", "neither an RSS nor an Atom feed"),
        (b'{"messages": [], "collection": []}', "expected a JSON array"),
    ],
)
def test_what_is_not_a_listing_is_named_as_such(content, message):
    with pytest.raises(ParseError, match=message):
        parse_listing(content, "f.dat")


def test_xml_bombs_are_refused():
    bomb = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><rss><channel><title>&b;</title></channel></rss>'
    with pytest.raises(ParseError, match="refused unsafe XML"):
        parse_listing(bomb, "bomb.xml")
