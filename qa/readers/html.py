"""Web pages (`.html`, `.htm`) through lxml: the main text without navigation, headings kept, FAQ markup as pairs.

Boilerplate goes by structure, not by guesswork: scripts, styles, forms,
`<nav>`, `<aside>`, hidden elements, ARIA navigation/banner/contentinfo
regions, and a page's own `<header>`/`<footer>` (not an article's); the text is
read from `<main>` (or the one `<article>`) when the page has one. FAQ pairs
come from schema.org `FAQPage` JSON-LD, `<details><summary>`, and `<dt>`s ending
in '?' with their `<dd>`. Passages point into the extracted text the index stores.

What a reader of the page cannot see never answers silently (docs/reliability.md):
elements hidden by the `hidden` attribute, `aria-hidden` or an inline style
(`display: none`, `visibility: hidden`) are left out with a warning naming the
line; a JSON-LD pair whose question the page shows with another answer is left
out (the visible answer wins), and one the page does not show at all is kept
(pages that draw their FAQ by script) with a warning. Pages nested deeper than
libxml2's default 256 levels are read in full (`huge_tree`); past its hard
limit the rest of the page is lost, and the warning says from which line.
"""

from __future__ import annotations

import json
import re

from pathlib import Path

from ..errors import UnreadableDocumentError
from .base import Block, Document, TextBuilder, assemble, clean_inline, decode_text, readable_title

SUFFIXES = (".html", ".htm")
KIND = "html"

_DROP = ("script", "style", "noscript", "template", "nav", "aside", "form", "button", "iframe", "svg", "select", "object", "canvas")
_DROP_ROLES = {"navigation", "banner", "contentinfo", "search", "complementary", "menu", "menubar"}
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_BLOCKS = {
    "p", "div", "section", "article", "main", "blockquote", "pre", "table", "tr", "ul", "ol", "dl",
    "figure", "figcaption", "address", "header", "footer", "body", "li", "dd", "dt", "details", "summary",
    "caption", "hr", "center", "fieldset",
}
_LISTS = {"ul", "ol"}


def _element_text(element) -> str:
    """All text of an element, whitespace collapsed."""
    return " ".join(element.text_content().split())


def _faq_jsonld(root) -> list[tuple[str, str, int]]:
    """(question, answer, line of its script) of schema.org FAQPage JSON-LD blocks; answers' HTML reduced to text."""
    import lxml.html

    pairs: list[tuple[str, str, int]] = []
    line = 1

    def visit(node) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item)
            return
        if not isinstance(node, dict):
            return
        types = node.get("@type")
        types = types if isinstance(types, list) else [types]
        if "Question" in types and isinstance(node.get("name"), str):
            answer = node.get("acceptedAnswer") or node.get("suggestedAnswer")
            answer = answer[0] if isinstance(answer, list) and answer else answer
            text = answer.get("text") if isinstance(answer, dict) else None
            if isinstance(text, str) and text.strip():
                fragment = lxml.html.fragment_fromstring(text, create_parent="div")
                pairs.append((" ".join(node["name"].split()), clean_inline(_block_text(fragment)), line))
            return
        for key in ("@graph", "mainEntity", "hasPart"):
            if key in node:
                visit(node[key])

    for script in root.xpath('//script[@type="application/ld+json"]'):
        line = script.sourceline or 1
        try:
            visit(json.loads(script.text or ""))
        except (ValueError, RecursionError):
            continue  # a broken JSON-LD block is the page's problem, not a reason to drop the page
    return pairs


def _block_text(element) -> str:
    """An element's text with line breaks at block boundaries (for JSON-LD answers and list items).

    Iterative, not recursive: a page may nest thousands of elements (unclosed `<font>` tags).
    """
    from lxml import etree

    parts: list[str] = []
    for event, el in etree.iterwalk(element, events=("start", "end")):
        named = isinstance(el.tag, str)
        if event == "start":
            if named:
                if el.tag in _BLOCKS or el.tag == "br":
                    parts.append("\n")
                parts.append(el.text or "")
            continue
        if named and el.tag in _BLOCKS:
            parts.append("\n")
        if el is not element:
            parts.append(el.tail or "")
    return "".join(parts)


_HIDING_STYLE = re.compile(r"(?:^|;)\s*(display\s*:\s*none|visibility\s*:\s*hidden)\b", re.IGNORECASE)
_SNIPPET = 60


def hidden_by(element) -> str | None:
    """Why a reader of the page cannot see `element` (its own markup only), or None."""
    if element.get("hidden") is not None:
        return "the hidden attribute"
    if (element.get("aria-hidden") or "").strip().lower() == "true":
        return "aria-hidden"
    found = _HIDING_STYLE.search(element.get("style") or "")
    if found:
        return "style " + " ".join(found.group(1).lower().replace(":", ": ").split())
    return None


def _strip_boilerplate(root) -> list[tuple[int, str]]:
    """Drop boilerplate and hidden elements; returns a warning (source line, message) per hidden one holding text."""
    warnings: list[tuple[int, str]] = []
    for element in list(root.iter()):
        if not isinstance(element.tag, str):  # comments, processing instructions
            if element.getparent() is not None:
                element.drop_tree()
            continue
        role = (element.get("role") or "").lower()
        hidden = hidden_by(element)
        page_chrome = element.tag in ("header", "footer") and not any(
            a.tag in ("article", "main") for a in element.iterancestors()
        )
        if hidden and element.tag not in _DROP:
            text = _element_text(element)
            if text:
                snippet = text if len(text) <= _SNIPPET else text[: _SNIPPET - 1] + "…"
                warnings.append((element.sourceline or 1, f"hidden text (by {hidden}) is not indexed: {snippet!r}"))
        if element.tag in _DROP or role in _DROP_ROLES or hidden or page_chrome:
            if element.getparent() is not None:
                element.drop_tree()
    return warnings


def _main(root):
    for query in ("//main", '//*[@role="main"]'):
        found = root.xpath(query)
        if found:
            return found[0]
    articles = root.xpath("//article")
    if len(articles) == 1:
        return articles[0]
    body = root.find("body")
    return body if body is not None else root


class _Walker:
    """Document-order walk that cuts the main element into blocks of clean text.

    The walk keeps its own stack of steps instead of recursing, so a page nested
    thousands of levels deep (each paragraph opening an unclosed `<font>`) is read
    in full rather than failing with RecursionError.
    """

    def __init__(self) -> None:
        self.out = TextBuilder()
        self.buffer: list[str] = []

    def flush(self, **flags) -> Block | None:
        text = clean_inline("".join(self.buffer))
        self.buffer = []
        return self.out.add(text, **flags)

    def walk(self, root) -> None:
        stack: list = [lambda: self._visit(root)]
        while stack:
            step = stack.pop()
            more = step()
            if isinstance(more, list):  # a visit's next steps (flush returns its Block: not steps)
                stack.extend(reversed(more))

    def _text(self, text: str | None):
        return lambda: self.buffer.append(text or "")

    def _children(self, el, skip=None) -> list:
        """Steps for an element's own text, then each child and its tail."""
        steps = [self._text(el.text)]
        for child in el:
            if child is skip:
                steps.append(self._text(child.tail))
                continue
            if isinstance(child.tag, str):
                steps.append(lambda child=child: self._visit(child))
            steps.append(self._text(child.tail))
        return steps

    def _visit(self, el) -> list | None:
        """Handle one element; returns the steps that must run next, in order."""
        tag = el.tag
        if tag in _HEADINGS:
            self.flush()
            self.out.add(_element_text(el), heading=True)
        elif tag == "details":
            self.flush()
            summary = el.find("summary")
            asked = self.out.add(_element_text(summary), question=True) if summary is not None else None
            before = len(self.out.blocks)

            def end() -> None:
                self.flush()
                if asked is not None:
                    self._close(before)

            return self._children(el, skip=summary) + [end]
        elif tag == "dt":
            self.flush()
            text = _element_text(el)
            self.out.add(text, question=text.endswith("?"))
        elif tag == "dd":
            self.flush()
            before = len(self.out.blocks)

            def end() -> None:
                self.flush()
                self._close(before)

            return self._children(el) + [end]
        elif tag == "br":
            self.buffer.append("\n")
        elif tag in _LISTS:
            self.flush()
            for child in el:
                if isinstance(child.tag, str):
                    self.buffer.append("\n")
                    self._inline(child)
                self.buffer.append("\n")
            self.flush()
        elif tag in _BLOCKS:
            self.flush()
            return self._children(el) + [self.flush]
        else:
            return self._children(el)
        return None

    def _close(self, before: int) -> None:
        """The last block added since `before` ends the open answer (a <details> or <dd> is over)."""
        if len(self.out.blocks) > before:
            self.out.blocks[-1].closes = True

    def _inline(self, el) -> None:
        """A list item's text on one line, nested lists included."""
        self.buffer.append(" ".join(_block_text(el).split()))


def _parse(path: str, data: bytes):
    """(root, warnings) of a page, or (None, []) for an empty one.

    `huge_tree` lifts libxml2's depth limit from 256 to its hard limit and its
    10 MB limit on one text node, which it otherwise enforces by silently
    dropping the rest of the page; the parser's log says when the hard limit
    cut the page anyway.
    """
    import lxml.html
    from lxml import etree

    text = decode_text(path, data)
    # lxml refuses a str that declares its own encoding; the bytes are decoded already.
    text = re.sub(r"^\s*<\?xml[^>]*>", "", text)
    if not text.strip():
        return None, []
    parser = lxml.html.HTMLParser(huge_tree=True)
    try:
        root = lxml.html.document_fromstring(text, parser=parser)
    except (etree.ParserError, ValueError) as exc:
        raise UnreadableDocumentError(path, f"not a readable HTML page ({exc})") from exc
    warnings = []
    cut = next((e for e in parser.error_log if e.type_name == "ERR_RESOURCE_LIMIT" or "Excessive depth" in e.message), None)
    if cut is not None:
        reason = " ".join(cut.message.split()).split(",")[0]
        warnings.append((cut.line or 1, f"the page is cut here ({reason}): the text after line {cut.line} is not indexed"))
    return root, warnings


def _words(text: str) -> str:
    """Case, whitespace and closing punctuation do not make two texts differ."""
    return " ".join(text.casefold().split()).rstrip(" ?.!")


def parse_html(path: str, data: bytes) -> Document:
    """A web page's bytes → Document over its extracted main text."""
    root, notes = _parse(path, data)
    if root is None:
        return Document(path=path, text="", title=readable_title(Path(path)), passages=(), kind=KIND)
    pairs = _faq_jsonld(root)
    page_title = " ".join((root.findtext(".//title") or "").split()) or None
    notes += _strip_boilerplate(root)
    walker = _Walker()
    walker.walk(_main(root))
    walker.flush()
    out = walker.out
    visible = [(b.heading or " ".join(l.text for l in b.lines)).split() for b in out.blocks]
    shown = len(visible)
    added = []
    for question, answer, line in pairs:
        q, a = question.split(), answer.split()
        # JSON-LD marks up visible text: a visible question followed by its answer becomes that pair.
        found = next((i for i in range(1, shown) if visible[i] == a and visible[i - 1] == q), None)
        if found is not None:
            out.blocks[found - 1].question = True
            out.blocks[found].closes = True
            continue
        at = next((i for i in range(shown) if _words(" ".join(visible[i])) == _words(question)), None)
        if at is not None:
            if _words(answer) not in _words(" ".join(" ".join(v) for v in visible[at + 1 : at + 21])):
                notes.append((line, f"hidden JSON-LD answer to {question!r} differs from the page's own; "
                                 f"the page's is kept: {_snippet(answer)!r}"))
            continue  # shown already (a <details> or <dt> pair, or a heading with its own answer)
        if _words(question) in added:
            continue
        added.append(_words(question))
        notes.append((line, f"hidden JSON-LD pair (the page does not show it) is indexed: {question!r}"))
        out.add(question, question=True)
        out.add(answer, closes=True)
    h1 = root.xpath("//h1")
    title = (_element_text(h1[0]) if h1 else None) or page_title
    title, passages, warnings = assemble(path, out.text, out.blocks, title=title)
    return Document(path=path, text=out.text, title=title, passages=tuple(passages), kind=KIND,
                    warnings=tuple(sorted(notes) + warnings))


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SNIPPET else text[: _SNIPPET - 1] + "…"


read = parse_html
