"""My plan as a PDF: the plan page's own HTML and print stylesheet, laid out by WeasyPrint.

WeasyPrint fetches nothing over the network: its url_fetcher serves the page's static
files from the package and the pictures from the media store, and only the files the page
named (services/plan_page.PdfFiles). The output is deterministic: no random file id, and
the document's dates are the plan's own (a published version's `published_at`), so a
published version's PDF is the same bytes every time it is asked for.
"""

from __future__ import annotations

import hashlib

from PIL import ImageFile

_LOAD_TRUNCATED = ImageFile.LOAD_TRUNCATED_IMAGES
from weasyprint import HTML  # noqa: E402
from weasyprint.urls import URLFetcher, URLFetcherResponse  # noqa: E402

# Importing WeasyPrint turns on Pillow's LOAD_TRUNCATED_IMAGES for the whole process; the
# photo checks (services/media/photos.py) rely on a truncated upload failing to load, so
# it is put back. The PDF only embeds files the media pipeline already checked.
ImageFile.LOAD_TRUNCATED_IMAGES = _LOAD_TRUNCATED

from app.core.pages import STATIC_DIR  # noqa: E402
from app.services.plan_page import PdfFiles  # noqa: E402
from app.storage import MediaStore  # noqa: E402

# The base the page's relative links resolve against; never fetched (see _Fetcher).
BASE_URL = "https://childvoice.invalid/"


class _Fetcher(URLFetcher):
    def __init__(self, store: MediaStore, files: PdfFiles) -> None:
        super().__init__()
        self.store, self.files = store, files

    def fetch(self, url: str, headers: dict | None = None) -> URLFetcherResponse:
        if url.startswith(PdfFiles.SCHEME):
            ref = self.files.named.get(url.removeprefix(PdfFiles.SCHEME))
            if ref is None:
                raise ValueError("the PDF reads only the files its page names")
            body = b"".join(self.store.open_range(ref.sha256))
            return URLFetcherResponse(url, body, {"Content-Type": ref.content_type})
        if url.startswith(BASE_URL + "static/"):
            root = STATIC_DIR.resolve()
            path = (root / url.removeprefix(BASE_URL + "static/").split("?")[0]).resolve()
            if root not in path.parents or not path.is_file():
                raise ValueError("no such static file")
            kind = "text/css" if path.suffix == ".css" else "image/png"
            return URLFetcherResponse(url, path.read_bytes(), {"Content-Type": kind})
        raise ValueError("the PDF makes no network request")


def render(html: str, files: PdfFiles, store: MediaStore) -> bytes:
    """The PDF of a rendered plan page (its `dcterms.created`/`modified` meta give the
    document's dates)."""
    identifier = hashlib.sha256(html.encode()).hexdigest()[:32].encode()
    return HTML(string=html, base_url=BASE_URL, url_fetcher=_Fetcher(store, files),
                media_type="print").write_pdf(pdf_identifier=identifier)
