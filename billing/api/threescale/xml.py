"""A small, strict XML writer for the 3scale representations.

3scale's Builder output is compact (no indentation) and distinguishes two
empty forms that clients can see: `<tag/>` for a nil value and `<tag></tag>`
for an empty string. Every text and attribute value is escaped here, and
characters that XML 1.0 cannot carry are replaced, so whatever an account's
name or a gateway message contains, the document stays well-formed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
# Characters outside the XML 1.0 Char production (control characters other
# than tab, newline and carriage return, lone surrogates, U+FFFE/U+FFFF).
_INVALID_CHARS_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(value: str) -> str:
    return _INVALID_CHARS_RE.sub("\ufffd", value)


def escape_text(value: str) -> str:
    return _clean(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_attribute(value: str) -> str:
    return escape_text(value).replace('"', "&quot;")


@functools.lru_cache(maxsize=1024)
def _is_valid_name(name: str) -> bool:
    # Cached: a page of invoices builds thousands of elements from a few dozen
    # names, and checking each one anew was an eighth of the XML list's time.
    return bool(_NAME_RE.match(name)) and not name.lower().startswith("xml")


def check_name(name: str) -> str:
    if not _is_valid_name(name):
        raise ValueError(f"not a valid XML element or attribute name: {name!r}")
    return name


class Element:
    """One element: text (None renders `<tag/>`, "" renders `<tag></tag>`) or children."""

    __slots__ = ("attributes", "children", "tag", "text")

    def __init__(
        self,
        tag: str,
        text: str | None = None,
        *,
        children: Iterable[Element] | None = None,
        attributes: dict[str, str] | None = None,
    ) -> None:
        self.tag = check_name(tag)
        self.text = text
        self.children = list(children) if children is not None else None
        self.attributes = attributes or {}
        for name in self.attributes:
            check_name(name)

    def append(self, child: Element) -> Element:
        if self.children is None:
            self.children = []
        self.children.append(child)
        return child

    def write(self, out: list[str]) -> None:
        attrs = "".join(
            f' {name}="{escape_attribute(str(value))}"' for name, value in self.attributes.items()
        )
        if self.children is not None:
            if not self.children and self.text is None:
                out.append(f"<{self.tag}{attrs}/>")
                return
            out.append(f"<{self.tag}{attrs}>")
            for child in self.children:
                child.write(out)
            out.append(f"</{self.tag}>")
        elif self.text is None:
            out.append(f"<{self.tag}{attrs}/>")
        else:
            out.append(f"<{self.tag}{attrs}>{escape_text(self.text)}</{self.tag}>")

    def to_string(self) -> str:
        out: list[str] = []
        self.write(out)
        return "".join(out)


class Raw(Element):
    """Markup written as it is: a fragment this writer produced earlier (an
    invoice's stored representation), placed in a document built around it."""

    __slots__ = ()

    def __init__(self, markup: str) -> None:  # noqa: D107 - no name to check
        self.tag = ""
        self.text = markup
        self.children = None
        self.attributes = {}

    def write(self, out: list[str]) -> None:
        out.append(self.text or "")


def container(tag: str, children: Iterable[Element], *, empty_as_pair: bool = False, **attrs):
    """An element holding children; an empty one renders `<tag/>` or, if asked, `<tag></tag>`."""
    items = list(children)
    element = Element(tag, children=items, attributes={k: str(v) for k, v in attrs.items()})
    if not items and empty_as_pair:
        element.children = None
        element.text = ""
    return element


def document(root: Element) -> bytes:
    """The whole document: the declaration and the root, compact, UTF-8."""
    return (XML_DECLARATION + root.to_string()).encode("utf-8")
