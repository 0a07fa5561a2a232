"""Identity: arXiv ids in every spelling, title keys, LaTeX reduced to text."""

from __future__ import annotations

import pytest

from digest.ids import (
    clean_text,
    cut_text,
    find_arxiv_id,
    latex_to_text,
    normalize_title,
    parse_arxiv_id,
    trailing_arxiv_id,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2401.12345", ("2401.12345", None)),
        ("2401.12345v2", ("2401.12345", 2)),
        ("arXiv:2401.12345v11", ("2401.12345", 11)),
        ("https://arxiv.org/abs/2401.12345", ("2401.12345", None)),
        ("http://arxiv.org/abs/2401.12345v3", ("2401.12345", 3)),
        ("https://arxiv.org/pdf/2401.12345v3.pdf", ("2401.12345", 3)),
        ("https://export.arxiv.org/abs/0704.0001", ("0704.0001", None)),
        ("oai:arXiv.org:2205.06398v2", ("2205.06398", 2)),
        ("hep-th/9901001", ("hep-th/9901001", None)),
        ("hep-ex/0307015v1", ("hep-ex/0307015", 1)),
        ("math.CO/0112567", ("math.CO/0112567", None)),
        ("http://arxiv.org/abs/cond-mat/0702661v2", ("cond-mat/0702661", 2)),
    ],
)
def test_parse_arxiv_id_accepts_every_common_spelling(text, expected):
    assert parse_arxiv_id(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1234",
        "2401.123",
        "arXiv",
        "https://example.org/2401.12345",
        "10.1101/2024.01.15.123456",
    ],
)
def test_parse_arxiv_id_rejects_what_is_not_an_id(text):
    assert parse_arxiv_id(text) is None


def test_ids_are_found_in_links_and_mirror_urls():
    assert find_arxiv_id("see https://arxiv.org/abs/2401.12345v2 for details") == "2401.12345"
    assert find_arxiv_id("no link here") is None
    assert trailing_arxiv_id("https://tldr.takara.ai/p/2604.26238") == ("2604.26238", None)
    assert trailing_arxiv_id("https://example.org/posts/2024.12345-notes") is None


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (
            r"Radial Attention: $O(n\log n)$ Sparse Attention",
            "Radial Attention: O(n log n) Sparse Attention",
        ),
        (r"Landauer-B\"uttiker transport", "Landauer-Büttiker transport"),
        (r"\textbf{adaptive} tokens\textemdash discrete", "adaptive tokens—discrete"),
        (r"Polyak-{\L}ojasiewicz and Kendall's {\tau}", "Polyak-Łojasiewicz and Kendall's τ"),
        (r"to their \( O(n^3) \) cost", "to their O(n^3) cost"),
        (r"reaches 100\% accuracy", "reaches 100% accuracy"),
        ("improves by 5% on 10% of runs", "improves by 5% on 10% of runs"),  # bare % is percent
        (r"costs \$0.0007 per query", "costs $0.0007 per query"),
        ("$5 and $10 bills", "$5 and $10 bills"),  # prices, not math
        (r"define the \mainAlgorithm algorithm", "define the mainAlgorithm algorithm"),
        ("plain\n  hard-wrapped   text", "plain hard-wrapped text"),
        ("Déjà vu <b>kept</b> as text", "Déjà vu <b>kept</b> as text"),
    ],
)
def test_latex_is_reduced_to_readable_text(raw, text):
    assert latex_to_text(raw) == text


def test_unparseable_latex_falls_back_to_the_original_text():
    broken = r"\href{only one argument and \url{"
    assert latex_to_text(broken) == broken


def test_title_keys_ignore_case_punctuation_latex_and_unicode_forms():
    key = normalize_title(r"Radial Attention: $O(n\log n)$ Sparse Attention")
    assert key == normalize_title("radial attention — O(n log n) sparse   attention")
    assert key == "radial attention o n log n sparse attention"
    assert normalize_title("Ｆｕｌｌｗｉｄｔｈ Title") == "fullwidth title"  # NFKC
    assert normalize_title("A Title") != normalize_title("A Different Title")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Right-to-left \u202ekcatta\u202c here", "Right-to-left kcatta here"),
        ("\u2066isolate\u2069 \u202a\u202b\u202dembed\u202c", "isolate embed"),
        ("atten\u200btion\u200c\u200d\u200e\u200f", "attention"),
        ("\ufeffBOM and soft\u00adhyphen\u2060", "BOM and softhyphen"),
        ("line\u2028sep\u2029para", "line sep para"),
        ("bell\x07 and nul\x00 and del\x7f and c1\x9b", "bell and nul and del and c1"),
        ("lone \ud800 surrogate, tag \U000e0041 letter", "lone  surrogate, tag  letter"),
        ("tabs\tand\nnewlines\r\nstay", "tabs\tand\nnewlines\r\nstay"),
        ("Déjà vu, 注意力, 🚀, Przemysław", "Déjà vu, 注意力, 🚀, Przemysław"),
    ],
)
def test_clean_text_drops_what_a_reader_cannot_see(text, expected):
    assert clean_text(text) == expected


def test_every_invisible_character_python_knows_is_dropped():
    import sys
    import unicodedata

    hidden = [
        chr(code)
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code)) in {"Cf", "Cs"}
    ]
    assert len(hidden) > 2_000
    assert clean_text("".join(hidden)) == ""


def test_invisible_characters_do_not_change_a_title_key():
    assert normalize_title("Linear Atten\u200btion \u202eIs\u202c All") == normalize_title(
        "linear attention is all"
    )


def test_cut_text_marks_a_cut_by_going_past_the_limit():
    assert cut_text("abc", 3) == "abc"
    assert cut_text("abcd", 3) == "abc…"
    assert len(cut_text("x" * 5_000, 1_000)) == 1_001
