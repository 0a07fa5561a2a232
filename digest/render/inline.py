"""The email's CSS, inlined into its templates once rather than into every email.

Mail clients drop ``<style>``, so each element of an email needs its CSS in a style
attribute. css-inline can do that to a finished email: it parses it, matches every rule
against every element and writes the document out again, about a tenth of what an email
costs to make. But the rules an element of a template gets are the same in every email,
so they are worked out once per template, when the email's environment is built:

1. each Jinja tag of the source is swapped for an inert placeholder, so it parses as HTML;
2. each start tag gets a numbered marker attribute, css-inline styles the marked source,
   and the style it gives each marker is written into that start tag of the template;
3. the template's ``<style>`` keeps only the at-rules (small screens, dark mode), which no
   style attribute can hold: what css-inline keeps of it too;
4. the ``<mark>`` tags that the ``highlight`` filter writes get the style of a mark.

This is exact only for templates that keep their structure in their HTML. Emails are
inlined one by one instead, as before, and the log says why and where, when a Jinja tag
sits inside a start tag or decides a class, when an element has a style attribute of its
own, or when a selector depends on siblings, positions or attribute values (one template
element is many in the email). What a template puts inside another (a macro called
inside a ``<div>``) is styled without the caller around it, so the first email of a
renderer is also inlined in full, and if the two differ every email is. A template file
that changes is inlined again, as Jinja reloads it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from html import escape
from html.parser import HTMLParser
from weakref import WeakKeyDictionary

import css_inline
from jinja2 import Environment, FunctionLoader, Template, TemplateError, meta

log = logging.getLogger("digest")

EMAIL_TEMPLATE = "email.html.j2"
Source = tuple[str, str | None, Callable[[], bool] | None]  # as a Jinja loader gives it

# The reference: a finished email inlined in full, media queries kept for dark mode.
_EACH_EMAIL = css_inline.CSSInliner(keep_at_rules=True, load_remote_stylesheets=False)
# Parses and writes out a document unchanged: puts two documents in one spelling.
_RESERIALISE = css_inline.CSSInliner(
    inline_style_tags=False, keep_style_tags=True, load_remote_stylesheets=False
)

_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)  # the default delimiters
_OPEN, _CLOSE = "\ue000", "\ue001"  # private-use characters around a placeholder's number
_PLACEHOLDER = re.compile(f"{_OPEN}(\\d+){_CLOSE}")
_MARKER = "data-inline-marker"
_INCLUDE = re.compile(r"\{%-?\s*include\s+(['\"])([^'\"]+)\1\s*-?%\}")
_DECLARATIONS = re.compile(r"\{[^{}]*\}")
_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)
# Selectors whose match depends on what a loop or a value makes of an element.
_STRUCTURAL = re.compile(r"[+~\[]|:(?:first|last|nth|only)-|:empty|:has\(")


class NotInlinable(Exception):
    """Why a template's CSS cannot be inlined once for every email; logged, not raised."""


def inline_each(html: str) -> str:
    """One finished email inlined in full: the fallback, and what the other must equal."""
    return _EACH_EMAIL.inline(html)


@dataclass(slots=True)
class EmailHtml:
    """Renders the HTML part of an email, from the inlined template where there is one."""

    plain: Template
    inlined: Template | None
    sources_uptodate: tuple[Callable[[], bool], ...] = ()
    checked: bool = False

    def render(self, **context: object) -> str:
        if self.inlined is None:
            return inline_each(self.plain.render(**context))
        html = self.inlined.render(**context)
        if not self.checked:
            self.checked = True
            expected = inline_each(self.plain.render(**context))
            if not same_document(html, expected):
                log.info("email templates styled apart from their callers; inlining each email")
                self.inlined = None
                return expected
        return html

    def is_up_to_date(self) -> bool:
        """False once a template file changed: Jinja would reload it, so this is rebuilt."""
        return self.plain.is_up_to_date and all(check() for check in self.sources_uptodate)


_renderers: WeakKeyDictionary[Environment, EmailHtml] = WeakKeyDictionary()


def email_html(env: Environment) -> EmailHtml:
    """The email renderer of an environment: built once, and again if a template changes."""
    renderer = _renderers.get(env)
    if renderer is None or not renderer.is_up_to_date():
        renderer = _renderers[env] = _build_email_html(env)
    return renderer


def _build_email_html(env: Environment) -> EmailHtml:
    plain = env.get_template(EMAIL_TEMPLATE)
    sources: dict[str, Source] = {}
    try:
        sources = _sources_used_by(env, EMAIL_TEMPLATE)
        inlined = inlined_environment(env, sources).get_template(EMAIL_TEMPLATE)
    except NotInlinable as reason:
        log.info("CSS inlined into each email, not into the templates: %s", reason)
        inlined = None
    uptodate = tuple(check for _source, _filename, check in sources.values() if check)
    return EmailHtml(plain, inlined, uptodate)


def same_document(inlined: str, expected: str) -> bool:
    """Whether two emails are the same document however their HTML is spelled: attributes
    in any order, and the at-rules ``<style>`` anywhere (css-inline moves it up)."""
    return _Tokens(_RESERIALISE.inline(inlined)).tokens == _Tokens(expected).tokens


class _Tokens(HTMLParser):
    """A document as a list of tags and texts, attributes sorted, ``<style>`` left out."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tokens: list[tuple[str, object]] = []
        self._in_style = False
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_style = tag == "style"
        if not self._in_style:
            self.tokens.append(("<", (tag, sorted(attrs, key=str))))

    def handle_endtag(self, tag: str) -> None:
        if tag != "style":
            self.tokens.append(("/", tag))
        self._in_style = False

    def handle_decl(self, decl: str) -> None:
        self.tokens.append(("!", decl))

    def handle_data(self, data: str) -> None:
        if self._in_style:
            return
        if self.tokens and self.tokens[-1][0] == "text":
            data = str(self.tokens.pop()[1]) + data
        self.tokens.append(("text", data))


def inlined_environment(env: Environment, sources: dict[str, Source]) -> Environment:
    """An overlay of ``env`` whose templates (``sources``: the root first, then every one it
    uses) have their stylesheet inlined; raises NotInlinable when that cannot be exact."""
    parsed = {name: _Parsed.of(name, source) for name, (source, _file, _check) in sources.items()}
    holder, span, css, included = _the_stylesheet(parsed)
    sheet = _Stylesheet(css)
    inlined: dict[str, Source] = {}
    for name, template in parsed.items():
        text = template.source  # an included stylesheet stays as it is, if used again
        if name not in included:
            at_rules = {span: f"{{% raw %}}{sheet.at_rules}{{% endraw %}}"}
            text = template.inlined(sheet, at_rules if name == holder else {})
        inlined[name] = (text, sources[name][1], None)
    overlay = env.overlay(loader=FunctionLoader(inlined.get))
    overlay.filters = dict(env.filters)  # an overlay shares its parent's dict
    overlay.filters["highlight"] = partial(env.filters["highlight"], style=sheet.mark)
    return overlay


def _sources_used_by(env: Environment, root: str) -> dict[str, Source]:
    """The sources of ``root`` and of every template it imports, includes or extends."""
    assert env.loader is not None
    sources: dict[str, Source] = {}
    pending = [root]
    while pending:
        name = pending.pop()
        try:  # a template that is missing or broken fails when (if) the plain one renders it
            sources[name] = env.loader.get_source(env, name)
            used_names = list(meta.find_referenced_templates(env.parse(sources[name][0])))
        except TemplateError as error:
            raise NotInlinable(f"{name}: {type(error).__name__}: {error}") from error
        for used in used_names:
            if used is None:
                raise NotInlinable(f"{name} chooses a template at render time")
            if used not in sources and used not in pending:
                pending.append(used)
    return sources


@dataclass(frozen=True, slots=True)
class _StartTag:
    start: int  # offset of "<"
    end: int  # offset after ">"
    name: str
    attrs: tuple[tuple[str, str | None], ...]


class _Scanner(HTMLParser):
    """The start tags of an HTML text, where each one is, and the spans of <style> text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=False)
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self._style_from = 0
        self.tags: list[_StartTag] = []
        self.styles: list[tuple[int, int]] = []
        self.feed(text)
        self.close()

    def _offset(self) -> int:
        line, column = self.getpos()
        return self._line_starts[line - 1] + column

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        start = self._offset()
        end = start + len(self.get_starttag_text() or "")
        self.tags.append(_StartTag(start, end, tag, tuple(attrs)))
        self._style_from = end

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self.styles.append((self._style_from, self._offset()))


@dataclass(frozen=True, slots=True)
class _Parsed:
    """A template's source as HTML: its Jinja tags swapped for placeholders, then scanned."""

    source: str
    text: str
    jinja: tuple[str, ...]
    scan: _Scanner

    @classmethod
    def of(cls, name: str, source: str) -> _Parsed:
        if _OPEN in source or _CLOSE in source:
            raise NotInlinable(f"{name} holds the characters used as placeholders")
        jinja: list[str] = []

        def placeholder(match: re.Match[str]) -> str:
            jinja.append(match[0])
            return f"{_OPEN}{len(jinja) - 1}{_CLOSE}"

        text = _JINJA.sub(placeholder, source)
        parsed = cls(source, text, tuple(jinja), _Scanner(text))
        for tag in parsed.scan.tags:
            if problem := _problem_with(tag):
                line = parsed.restore(text[: tag.start]).count("\n") + 1
                raise NotInlinable(f"{name}, line {line}: <{tag.name}> has {problem}")
        return parsed

    def restore(self, text: str) -> str:
        return _PLACEHOLDER.sub(lambda match: self.jinja[int(match[1])], text)

    def inlined(self, sheet: _Stylesheet, replace: dict[tuple[int, int], str]) -> str:
        """The source with each start tag's style written in, and ``replace``'s spans
        (of the placeholder text) swapped for their new text."""
        styles = sheet.styles_of(_marked(self.text, self.scan.tags))
        edits = list(replace.items())
        for number, tag in enumerate(self.scan.tags):
            if style := styles.get(number):
                at = _attribute_position(self.text, tag)
                edits.append(((at, at), f' style="{_attribute_value(style)}"'))
        text = self.text
        for (start, end), new in sorted(edits, reverse=True):
            text = text[:start] + new + text[end:]
        return self.restore(text)


def _problem_with(tag: _StartTag) -> str | None:
    """What keeps a start tag from being styled once for every email, if anything."""
    if _OPEN in tag.name or any(_OPEN in key for key, _value in tag.attrs):
        return "a Jinja tag inside it"
    if any(key == "class" and _OPEN in (value or "") for key, value in tag.attrs):
        return "a class chosen by a Jinja tag"
    if any(key in {"style", _MARKER} for key, _value in tag.attrs):
        return "a style attribute of its own"
    return None


def _attribute_position(text: str, tag: _StartTag) -> int:
    """Where a new attribute goes: before the ">" (or "/>") that ends the start tag."""
    return tag.end - 2 if text[tag.end - 2 : tag.end] == "/>" else tag.end - 1


def _attribute_value(text: str) -> str:
    """Text for a double-quoted attribute, escaped as css-inline writes it."""
    return escape(text, quote=False).replace('"', "&quot;")


def _marked(text: str, tags: list[_StartTag]) -> str:
    """``text`` with each start tag numbered by a marker attribute, in order."""
    pieces: list[str] = []
    position = 0
    for number, tag in enumerate(tags):
        at = _attribute_position(text, tag)
        pieces += [text[position:at], f' {_MARKER}="{number}"']
        position = at
    pieces.append(text[position:])
    return "".join(pieces)


def _the_stylesheet(parsed: dict[str, _Parsed]) -> tuple[str, tuple[int, int], str, set[str]]:
    """The one ``<style>`` of the templates: which template holds it, its span there,
    its CSS, and the names of the files it includes."""
    found = [(name, span) for name, template in parsed.items() for span in template.scan.styles]
    if len(found) != 1:
        raise NotInlinable(f"{len(found)} <style> elements, where one is expected")
    holder, (start, end) = found[0]
    content = parsed[holder].restore(parsed[holder].text[start:end]).strip()
    included: set[str] = set()
    if include := _INCLUDE.fullmatch(content):
        included.add(include[2])
        content = parsed[include[2]].source
    if _JINJA.search(content):
        raise NotInlinable("the stylesheet is made by Jinja tags, not a file or literal CSS")
    selectors = _DECLARATIONS.sub("{}", _COMMENT.sub("", content))
    if structural := _STRUCTURAL.search(selectors):
        raise NotInlinable(f"a selector depends on siblings or values ({structural[0]!r})")
    if "#" in selectors and any(
        key == "id" and _OPEN in (value or "")
        for template in parsed.values()
        for tag in template.scan.tags
        for key, value in tag.attrs
    ):
        raise NotInlinable("an id selector, and ids chosen by Jinja tags")
    return holder, (start, end), content, included


class _Stylesheet:
    """A stylesheet split the way css-inline splits it: rules to inline, at-rules to keep."""

    def __init__(self, css: str) -> None:
        self._inliner = css_inline.CSSInliner(
            inline_style_tags=False, extra_css=css, load_remote_stylesheets=False
        )
        kept = _EACH_EMAIL.inline(f"<html><head><style>{css}</style></head></html>")
        at_rules = re.search(r"<style>(.*?)</style>", kept, re.DOTALL)
        self.at_rules = at_rules[1] if at_rules else ""
        self.mark = self.styles_of(f'<mark {_MARKER}="0"></mark>').get(0, "")

    def styles_of(self, marked: str) -> dict[int, str]:
        """The style css-inline gives each element of ``marked``, by its marker number."""
        styles = {}
        for tag in _Scanner(self._inliner.inline(marked)).tags:
            attrs = dict(tag.attrs)
            if (number := attrs.get(_MARKER)) is not None and attrs.get("style"):
                styles[int(number)] = attrs["style"]
        return styles
