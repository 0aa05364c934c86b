"""The real client behind a reverse proxy: forwarding headers believed only from
the proxies named in ``AWASI_TRUSTED_PROXIES``.

A forwarding header is just text the caller wrote. Believed from anyone, it lets a
client pick its own address (and so its own rate-limit and login-throttle bucket)
or claim https. So the header is read only when the socket peer is a trusted proxy;
from anyone else it is ignored and the peer is the client.

The parsing is aiohttp-remotes' (a maintained aio-libs package): for
``X-Forwarded-For`` its ``XForwardedFiltered`` walks the list from the right,
skipping trusted proxies, to the first address that is not one (so a chain of our
own proxies works, and whatever the client itself put at the left is not believed);
``X-Forwarded-Proto`` and ``-Host`` at the same hop. Its ``XForwardedFiltered``
does not check the socket peer itself; the gate below does. For RFC 7239
``Forwarded`` the last element (the one our proxy appended) is used.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from ipaddress import IPv4Network, IPv6Network, ip_address

from aiohttp import web
from aiohttp_remotes import ForwardedRelaxed, XForwardedFiltered

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# The scheme the client used, on the request the server made (the handlers get a
# clone with the proxy's view; response hooks such as the security headers get the
# original, and read it here).
_SECURE = web.RequestKey("awasi.forwarded_secure", bool)


def is_secure(request: web.Request) -> bool:
    """Whether the client reached us by https (directly, or through a trusted proxy)."""
    return request.get(_SECURE, request.secure)


class TrustedProxies:
    """Middleware holder: ``TrustedProxies(networks, header).middleware``."""

    def __init__(self, networks: tuple[IPv4Network | IPv6Network, ...],
                 header: str = "x-forwarded") -> None:
        self.networks = networks
        self.reader: XForwardedFiltered | ForwardedRelaxed = (
            XForwardedFiltered(set(networks)) if header == "x-forwarded"
            else ForwardedRelaxed(num=1))

    def trusts(self, peer: str | None) -> bool:
        """Whether the socket peer ``peer`` is one of the trusted proxies."""
        if not peer:
            return False
        try:
            address = ip_address(peer)
        except ValueError:  # a Unix socket, a scoped IPv6 address: not a proxy of ours
            return False
        return any(address in net for net in self.networks)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        # request.remote is still the socket peer here: this middleware is the only
        # one that replaces it.
        if not self.trusts(request.remote):
            return await handler(request)

        async def with_real_client(clone: web.Request) -> web.StreamResponse:
            request[_SECURE] = clone.secure
            return await handler(clone)

        return await self.reader.middleware(request, with_real_client)
