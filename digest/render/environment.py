"""The Jinja2 environment: user templates first, then the built-in ones, autoescaped HTML.

Built-in templates live in the top-level ``templates/`` folder of the source tree and
ship inside the wheel as ``digest/templates``. A user's folder (``templates`` in the
config) overrides them by file name, and a template there can still extend the built-in
one as ``default/NAME``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PrefixLoader,
    StrictUndefined,
    select_autoescape,
)
from markupsafe import Markup, escape

from digest.rank import highlight_spans


def builtin_templates() -> Path:
    """The built-in templates folder: inside the installed package, else the source tree."""
    packaged = Path(str(files("digest"))) / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "templates"


@lru_cache(maxsize=8)
def make_environment(user_templates: Path | None = None) -> Environment:
    """An environment (compiled templates are cached in it, so build it once per run)."""
    builtin = FileSystemLoader(builtin_templates())
    loaders = [FileSystemLoader(user_templates)] if user_templates else []
    loaders += [builtin, PrefixLoader({"default": builtin})]
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["highlight"] = highlight
    env.filters["md"] = markdown_escape
    env.filters["oneline"] = one_line
    env.filters["wrap"] = wrap
    return env


def highlight(text: str, terms: Iterable[str], style: str = "") -> Markup:
    """Escape ``text`` and wrap every matched term in ``<mark>`` (with ``style`` where
    the email's CSS is inlined into its templates)."""
    opening = f'<mark style="{escape(style)}">' if style else "<mark>"
    return Markup(_highlighted(str(text), tuple(terms), opening))  # noqa: S704 - escaped below


_OPEN, _CLOSE = "\x02", "\x03"  # control characters: never shown, so safe as markers


@lru_cache(maxsize=16384)  # readers who share a keyword often get the same paper marked alike
def _highlighted(text: str, terms: tuple[str, ...], opening: str) -> str:
    """The escaped text with its marks: the span edges are marked with two control
    characters, the whole text is escaped in one call, and the markers become tags."""
    text = text.replace(_OPEN, "").replace(_CLOSE, "")
    pieces: list[str] = []
    position = 0
    for start, end in highlight_spans(text, terms):
        pieces += [text[position:start], _OPEN, text[start:end], _CLOSE]
        position = end
    pieces.append(text[position:])
    escaped = str(escape("".join(pieces)))
    return escaped.replace(_OPEN, opening).replace(_CLOSE, "</mark>")


_MARKDOWN_INLINE = re.compile(r"([\\`*_\[\]])")
_MARKDOWN_BLOCK_START = re.compile(r"^(?:(>)|([#+-])(?=\s|$)|(\d+)([.)])(?=\s|$))")


def markdown_escape(text: str) -> str:
    """Text safe inside Markdown: no markup takes effect and no raw HTML gets through.

    Only what can start markup is escaped (emphasis, code, links, a heading or list at
    the start), so the file stays readable as plain text.
    """
    text = one_line(text).replace("&", "&amp;").replace("<", "&lt;")
    text = _MARKDOWN_INLINE.sub(r"\\\1", text)
    return _MARKDOWN_BLOCK_START.sub(_escape_block_start, text, count=1)


def _escape_block_start(match: re.Match[str]) -> str:
    quote, marker, number, dot = match.groups()
    if number:
        return f"{number}\\{dot}"  # "1. x" starts a list, "1\. x" does not
    return "\\" + (quote or marker)


def wrap(text: str, width: int = 72, indent: str = "") -> str:
    """Greedy word wrap for plain-text mail: lines of at most ``width`` characters (a word
    longer than that gets a line of its own), continued with ``indent``."""
    lines: list[str] = []
    line = ""
    for word in str(text).split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    return ("\n" + indent).join(lines)


def one_line(text: str) -> str:
    return " ".join(str(text).split())
