"""Who is asking: the client's address behind the reverse proxy.

One function serves both django-axes (admin login lockouts) and the rate limits on the
parents' forms, so that both count the same address.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """The client's IP address.

    With ``TRUSTED_PROXY_COUNT`` = 0 that is ``REMOTE_ADDR``. With n proxies in front, each of
    them appends the address it received the request from to ``X-Forwarded-For``, so the n-th
    entry from the right is the address the outermost proxy saw. Entries further left are
    whatever the client sent, and are never read: a forged header cannot choose the address
    that is counted or locked out.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    count: int = settings.TRUSTED_PROXY_COUNT
    if count > 0:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        # Fewer hops than proxies: the request did not come through them (a health check on
        # the loopback interface), so the peer is the client.
        if len(hops) >= count:
            try:
                return str(ipaddress.ip_address(hops[-count]))
            except ValueError:
                pass
    return remote
