"""The dashboard's WSGI application for bench/g1_polls.py, plus one bench-only page.

gunicorn serves `bench._g1_wsgi:application`: Django's own application and middleware,
unchanged, with the production settings (DEBUG off), except that

- the URLs are the dashboard's plus `/bench/floor/`: the floor of any logged-in request (the
  session lookup and the user, through every middleware) and nothing else, to compare a poll
  with;
- static URLs need no collected manifest (`{% static %}` costs a dict lookup either way).

Only the bench uses this module.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "remixsite.settings")

from django.conf import settings  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.urls import include, path  # noqa: E402

settings.STORAGES["staticfiles"] = {
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
}
settings.ROOT_URLCONF = __name__  # the patterns below, read at the first request
application = get_wsgi_application()  # sets Django up: the URL imports below need the apps


def floor(request: HttpRequest) -> HttpResponse:
    """Session and user only (LoginRequiredMiddleware has loaded both to get here)."""
    return HttpResponse(request.user.get_username(), content_type="text/plain")


urlpatterns = [path("bench/floor/", floor), path("", include("remixsite.urls"))]
