"""Rendered pages kept by the data they show: the same figures render once.

The public dashboard and a period's report are read far more often than their
figures change (the statistics' snapshot is refreshed every few seconds; a report's
rollups change as events arrive), and rendering them (a dozen charts' bars and
tables through Jinja, about 5,000 attribute lookups) took about 20 ms of CPU per
request, most of such a page's time at a million complaints (docs/BENCHMARKS.md).

The key is a digest of everything the template reads, so a kept page is never
staler than its data: the data is still read for every request, only the rendering
is saved. Kept in memory per process, the most recent ``size`` pages (each some tens
of kilobytes), so the memory stays bounded whatever the query strings.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable
from typing import Any


def digest(*parts: Any) -> bytes:
    """A key for ``parts`` (JSON-like data: dicts, lists, dates and numbers; anything
    else is keyed by ``str``). Dicts are keyed in their order, which the same code
    path builds the same way."""
    text = json.dumps(parts, default=str, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


class PageCache:
    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._pages: OrderedDict[bytes, str] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get_or_render(self, key: bytes, render: Callable[[], str]) -> str:
        page = self._pages.get(key)
        if page is not None:
            self._pages.move_to_end(key)
            self.hits += 1
            return page
        self.misses += 1
        page = render()
        self._pages[key] = page
        if len(self._pages) > self._size:
            self._pages.popitem(last=False)
        return page
