"""PDFs from staff to a citizen: checked before anyone stores or serves them.

A PDF is not re-encoded (there is no maintained library that rewrites one into a
provably inert file); it is refused unless all of these hold:

1. it starts with the magic bytes ``%PDF-``;
2. pypdf (maintained, pure Python) parses it: its cross-reference table, its
   catalog and a page tree with at least one page;
3. it is not encrypted (the citizen could not open it, and we could not inspect it);
4. nothing in its object graph can act when it is opened: no JavaScript (``/JS``,
   ``/JavaScript``), no launch or remote actions (``/Launch``, ``/GoToR``,
   ``/GoToE``, ``/SubmitForm``, ``/ImportData``), no embedded or attached files
   (``/EmbeddedFile``, ``/EmbeddedFiles``, ``/FileAttachment``), no rich media
   and no XFA forms. pypdf decodes ``#xx`` escapes in names, so ``/J#53`` is
   ``/JS``; objects inside compressed object streams are walked too.

The walk visits each object once and stops at ``MAX_OBJECTS``: a file with more is
refused rather than half-checked. Stream contents (page drawings, fonts, images) are
not decoded: they cannot run anything in a PDF viewer without one of the keys above.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

from pypdf import PdfReader
from pypdf.errors import PyPdfError
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject, PdfObject

MAGIC = b"%PDF-"
MAX_OBJECTS = 50_000
# Keys or name values that make a PDF do something when opened, or carry a file.
ACTIVE = frozenset({
    "/JS", "/JavaScript", "/Launch", "/GoToR", "/GoToE", "/SubmitForm", "/ImportData",
    "/EmbeddedFile", "/EmbeddedFiles", "/FileAttachment", "/RichMedia", "/XFA",
})


class PdfRefused(ValueError):
    """Why a PDF is refused: ``code`` is one of ``pdf_type``, ``pdf_unreadable``,
    ``pdf_encrypted``, ``pdf_active``, ``pdf_too_complex``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def is_pdf(data: bytes) -> bool:
    return data.startswith(MAGIC)


def check(data: bytes) -> int:
    """The number of pages of a PDF that passes every check above; raises
    ``PdfRefused`` otherwise. CPU-bound (parses the file): run it off the event loop."""
    if not is_pdf(data):
        raise PdfRefused("pdf_type", "not a PDF file")
    # pypdf logs (rather than raises) many repairs of sloppy files; quiet here.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        return _inspect(data)
    except PdfRefused:
        raise
    except RecursionError as e:
        raise PdfRefused("pdf_too_complex", "the PDF is too complex to check") from e
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError,
            IndexError, AssertionError) as e:
        # pypdf raises these on a damaged file; any of them means "could not read".
        raise PdfRefused("pdf_unreadable", "the PDF could not be read") from e


def _inspect(data: bytes) -> int:
    """``check`` without the translation of pypdf's errors."""
    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        raise PdfRefused("pdf_encrypted", "encrypted PDFs are not accepted")
    pages = len(reader.pages)
    if pages < 1:
        raise PdfRefused("pdf_unreadable", "the PDF has no pages")
    for key in _names(reader.trailer):
        if key in ACTIVE:
            raise PdfRefused("pdf_active", "PDFs with scripts, actions or embedded "
                                           "files are not accepted")
    return pages


def _names(root: PdfObject) -> Iterator[str]:
    """Every dictionary key and name value reachable from ``root``, each indirect
    object visited once; ``PdfRefused`` past ``MAX_OBJECTS``."""
    seen: set[tuple[int, int]] = set()
    stack: list[PdfObject] = [root]
    visited = 0
    while stack:
        obj = stack.pop()
        if isinstance(obj, IndirectObject):
            ref = (obj.idnum, obj.generation)
            if ref in seen:
                continue
            seen.add(ref)
            obj = obj.get_object()
            if obj is None:
                continue
        visited += 1
        if visited > MAX_OBJECTS:
            raise PdfRefused("pdf_too_complex", "the PDF is too complex to check")
        if isinstance(obj, DictionaryObject):  # streams too (their dictionary)
            for key in obj:
                yield str(key)
                stack.append(obj.raw_get(key))
        elif isinstance(obj, ArrayObject):
            stack.extend(obj)
        elif isinstance(obj, NameObject):
            yield str(obj)
