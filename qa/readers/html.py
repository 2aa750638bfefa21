"""Web pages (`.html`, `.htm`) through lxml: the main text without navigation, headings kept, FAQ markup as pairs.

Boilerplate goes by structure, not by guesswork: scripts, styles, forms,
`<nav>`, `<aside>`, hidden elements, ARIA navigation/banner/contentinfo
regions, and a page's own `<header>`/`<footer>` (not an article's); the text is
read from `<main>` (or the one `<article>`) when the page has one. FAQ pairs
come from schema.org `FAQPage` JSON-LD, `<details><summary>`, and `<dt>`s ending
in '?' with their `<dd>`. Passages point into the extracted text the index stores.
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


def _faq_jsonld(root) -> list[tuple[str, str]]:
    """(question, answer) pairs of schema.org FAQPage JSON-LD blocks; answers' HTML reduced to text."""
    import lxml.html

    pairs: list[tuple[str, str]] = []

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
                pairs.append((" ".join(node["name"].split()), clean_inline(_block_text(fragment))))
            return
        for key in ("@graph", "mainEntity", "hasPart"):
            if key in node:
                visit(node[key])

    for script in root.xpath('//script[@type="application/ld+json"]'):
        try:
            visit(json.loads(script.text or ""))
        except (ValueError, RecursionError):
            continue  # a broken JSON-LD block is the page's problem, not a reason to drop the page
    return pairs


def _block_text(element) -> str:
    """An element's text with line breaks at block boundaries (for JSON-LD answers)."""
    parts: list[str] = []

    def walk(el) -> None:
        if isinstance(el.tag, str) and (el.tag in _BLOCKS or el.tag == "br"):
            parts.append("\n")
        parts.append(el.text or "")
        for child in el:
            if isinstance(child.tag, str):
                walk(child)
            parts.append(child.tail or "")
        if isinstance(el.tag, str) and el.tag in _BLOCKS:
            parts.append("\n")

    walk(element)
    return "".join(parts)


def _strip_boilerplate(root) -> None:
    for element in list(root.iter()):
        if not isinstance(element.tag, str):  # comments, processing instructions
            if element.getparent() is not None:
                element.drop_tree()
            continue
        role = (element.get("role") or "").lower()
        hidden = element.get("hidden") is not None or element.get("aria-hidden") == "true"
        page_chrome = element.tag in ("header", "footer") and not any(
            a.tag in ("article", "main") for a in element.iterancestors()
        )
        if element.tag in _DROP or role in _DROP_ROLES or hidden or page_chrome:
            if element.getparent() is not None:
                element.drop_tree()


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
    """Document-order walk that cuts the main element into blocks of clean text."""

    def __init__(self) -> None:
        self.out = TextBuilder()
        self.buffer: list[str] = []

    def flush(self, **flags) -> Block | None:
        text = clean_inline("".join(self.buffer))
        self.buffer = []
        return self.out.add(text, **flags)

    def walk(self, el) -> None:
        tag = el.tag
        if tag in _HEADINGS:
            self.flush()
            self.out.add(_element_text(el), heading=True)
        elif tag == "details":
            self.flush()
            summary = el.find("summary")
            asked = self.out.add(_element_text(summary), question=True) if summary is not None else None
            before = len(self.out.blocks)
            self.buffer.append(el.text or "")
            for child in el:
                if child is not summary:
                    self.walk(child)
                self.buffer.append(child.tail or "")
            self.flush()
            if asked is not None:
                self._close(before)
        elif tag == "dt":
            self.flush()
            text = _element_text(el)
            self.out.add(text, question=text.endswith("?"))
        elif tag == "dd":
            self.flush()
            before = len(self.out.blocks)
            self._children(el)
            self.flush()
            self._close(before)
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
            self._children(el)
            self.flush()
        else:
            self._children(el)

    def _close(self, before: int) -> None:
        """The last block added since `before` ends the open answer (a <details> or <dd> is over)."""
        if len(self.out.blocks) > before:
            self.out.blocks[-1].closes = True

    def _children(self, el) -> None:
        self.buffer.append(el.text or "")
        for child in el:
            if isinstance(child.tag, str):
                self.walk(child)
            self.buffer.append(child.tail or "")

    def _inline(self, el) -> None:
        """A list item's text on one line, nested lists included."""
        self.buffer.append(" ".join(_block_text(el).split()))


def _parse(path: str, data: bytes):
    import lxml.html
    from lxml import etree

    text = decode_text(path, data)
    # lxml refuses a str that declares its own encoding; the bytes are decoded already.
    text = re.sub(r"^\s*<\?xml[^>]*>", "", text)
    if not text.strip():
        return None
    try:
        return lxml.html.document_fromstring(text)
    except (etree.ParserError, ValueError) as exc:
        raise UnreadableDocumentError(path, f"not a readable HTML page ({exc})") from exc


def parse_html(path: str, data: bytes) -> Document:
    """A web page's bytes → Document over its extracted main text."""
    root = _parse(path, data)
    if root is None:
        return Document(path=path, text="", title=readable_title(Path(path)), passages=(), kind=KIND)
    pairs = _faq_jsonld(root)
    page_title = " ".join((root.findtext(".//title") or "").split()) or None
    _strip_boilerplate(root)
    walker = _Walker()
    walker.walk(_main(root))
    walker.flush()
    out = walker.out
    # JSON-LD marks up visible text: a visible question followed by its answer becomes that pair;
    # a pair the page does not show is added after the page's text.
    norm = [(b.heading or " ".join(l.text for l in b.lines)).split() for b in out.blocks]
    for question, answer in pairs:
        q, a = question.split(), answer.split()
        found = next((i for i in range(1, len(norm)) if norm[i] == a and norm[i - 1] == q), None)
        if found is not None:
            out.blocks[found - 1].question = True
            out.blocks[found].closes = True
            continue
        if any(b.question and norm[i] == q for i, b in enumerate(out.blocks)):
            continue  # already a <details> or <dt> pair
        out.add(question, question=True)
        out.add(answer, closes=True)
    h1 = root.xpath("//h1")
    title = (_element_text(h1[0]) if h1 else None) or page_title
    title, passages, warnings = assemble(path, out.text, out.blocks, title=title)
    return Document(path=path, text=out.text, title=title, passages=tuple(passages), kind=KIND, warnings=tuple(warnings))


read = parse_html
