"""Compressed HTML: Django's GZipMiddleware for text/html answers only.

Pages and htmx partials shrink about tenfold. Everything else is left alone on purpose:
archived media is served with HTTP Range (a gzip stream cannot be sliced by byte ranges), zip
downloads and CSV exports stream, and WhiteNoise serves static files precompressed itself.
BREACH: the only secret in a page is the CSRF token, which Django masks afresh in every
response, and Django's GZipMiddleware pads each answer with random bytes (docs/security.md).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseBase
from django.middleware.gzip import GZipMiddleware


class HtmlGZipMiddleware(GZipMiddleware):
    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if response.streaming or not response.get("Content-Type", "").startswith("text/html"):
            return response
        return super().process_response(request, response)
