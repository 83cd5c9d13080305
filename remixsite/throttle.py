"""django-axes, adjusted: whose address a log-in comes from, and what a success forgives."""

from __future__ import annotations

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt
from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """The address log-in failures are counted against (AXES_CLIENT_IP_CALLABLE).

    Behind the reverse proxy (BEHIND_PROXY) REMOTE_ADDR is the proxy's own, shared by every
    visitor, so five failures anywhere would lock everyone out. The proxy appends the address
    it saw to X-Forwarded-For (docs/deploy.md): the right-most entry is that one, while
    anything to its left came from the client and could be anything.
    """
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if settings.BEHIND_PROXY and forwarded.strip():
        return forwarded.split(",")[-1].strip()[:45] or None  # 45: the longest IPv6 text
    addr = request.META.get("REMOTE_ADDR")
    return str(addr) if addr else None


class ScopedResetHandler(AxesDatabaseHandler):
    """AXES_RESET_ON_SUCCESS as stock axes does it deletes every row matching any lockout
    parameter, and "ip_address" alone matches every username tried from that address. Anyone
    with an account could then log in between guesses at someone else's password and never be
    locked out; here a success deletes only the (its username, its address) row."""

    def reset_user_attempts(self, request: HttpRequest, credentials: dict | None = None) -> int:
        ip_address = getattr(request, "axes_ip_address", None)
        username = get_client_username(request, credentials)
        count, _ = AccessAttempt.objects.filter(username=username, ip_address=ip_address).delete()
        return int(count)
