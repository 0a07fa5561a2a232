"""Safe XML reading shared by the feed parsers: defusedxml, and errors that name the input."""

from __future__ import annotations

import html
import re
from xml.etree.ElementTree import Element
from xml.etree.ElementTree import ParseError as XmlSyntaxError

import nh3
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from digest.errors import ParseError

ATOM = "{http://www.w3.org/2005/Atom}"
OPENSEARCH = "{http://a9.com/-/spec/opensearch/1.1/}"


def parse_xml(content: bytes, origin: str) -> Element:
    """Parse untrusted XML (no entity expansion, no external references)."""
    head = content[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
        raise ParseError(
            f"{origin}: an HTML page, not XML",
            hint="servers send HTML error pages with status 200; the source is read again next run",
        )
    try:
        return fromstring(content)
    except XmlSyntaxError as exc:
        line, column = exc.position
        raise ParseError(
            f"{origin}: malformed XML at line {line}, column {column}: {exc.msg}",
        ) from None
    except DefusedXmlException as exc:
        raise ParseError(f"{origin}: refused unsafe XML ({type(exc).__name__})") from None


_TAG = re.compile(r"</?[A-Za-z][^>]*>")
_BLOCK_END = re.compile(
    r"<(?:br|hr)\b[^>]*>|</(?:p|div|li|ul|ol|h[1-6]|tr|table|blockquote)>", re.I
)


def html_to_text(text: str) -> str:
    """Plain text of an HTML fragment (a feed's description); plain text passes unchanged."""
    if not _TAG.search(text):
        return text
    spaced = _BLOCK_END.sub(" \n", text)  # keep words of adjacent blocks apart
    return html.unescape(nh3.clean(spaced, tags=set(), clean_content_tags={"script", "style"}))


def atom_authors(entry: Element) -> tuple[str, ...]:
    """The names of an Atom entry's authors, in order."""
    names = (text_of(author.find(f"{ATOM}name")) for author in entry.findall(f"{ATOM}author"))
    return tuple(name for name in names if name)


def text_of(element: Element | None) -> str:
    """The element's text with surrounding white space removed ('' when absent)."""
    if element is None or element.text is None:
        return ""
    return element.text.strip()
