"""Free text from clients as plain text: HTML tags removed, as the reference's sanitizer does.

Tags are dropped and their text kept; what `<script>` and `<style>` hold is dropped with
them; character references are decoded. The result is plain text for a JSON API, so it is
not entity-escaped: encoding for a page is the page's job.
"""

from __future__ import annotations

from html.parser import HTMLParser

_DROPPED_CONTENT = frozenset({"script", "style", "textarea", "option", "noscript"})


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._dropping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROPPED_CONTENT:
            self._dropping += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROPPED_CONTENT and self._dropping:
            self._dropping -= 1

    def handle_data(self, data: str) -> None:
        if not self._dropping:
            self.parts.append(data)


def plain_text(text: str) -> str:
    """`text` without HTML, trimmed; text with no `<` or `&` is returned as it is (trimmed)."""
    if "<" not in text and "&" not in text:
        return text.strip()
    parser = _TextOnly()
    parser.feed(text)
    parser.close()
    return "".join(parser.parts).strip()
