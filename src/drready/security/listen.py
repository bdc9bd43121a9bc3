"""Listen addresses checked by what they bind, not by how they are spelled (S1, issue 12 item 3).

Every drready server binds to loopback by default. Listening on every interface must be an
explicit choice of the operator, because it exposes a service (the VTN, the servicer's API, an
ECHONET Lite node) to whatever network the machine is on. Comparing the host string with
``"0.0.0.0"`` is not enough: ``0``, ``0.0``, ``0x0``, ``000.000.000.000``, ``::``, ``::0``,
``0:0:0:0:0:0:0:0``, ``::ffff:0.0.0.0``, an empty string or a host name that resolves to the
unspecified address all bind every interface. :func:`check_listen_address` resolves the host the
way the socket layer will (``getaddrinfo`` with ``AI_PASSIVE``, as uvicorn and asyncio do) and
refuses when any resulting address is unspecified, unless ``allow_any_address`` is set; then it
logs a warning that names the exposure.

References
----------
RFC 4291 §2.5.2 (the unspecified address ``::``) and §2.5.5.2 (IPv4-mapped addresses); RFC 1122
§3.2.1.3 (``0.0.0.0`` means "this host" and is only a source or wildcard address); POSIX
``inet_aton`` (the short and hexadecimal IPv4 forms that ``0`` and ``0x0`` are).
"""

from __future__ import annotations

import ipaddress
import logging
import socket

__all__ = ["ListenAddressError", "binds_every_interface", "check_listen_address"]

_log = logging.getLogger("drready.security")


class ListenAddressError(ValueError):
    """A listen address that binds every interface without the operator's explicit consent, or
    that cannot be resolved at all."""


def _unspecified(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone (fe80::1%eth0)
    if ip.is_unspecified:
        return True
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return mapped is not None and mapped.is_unspecified


def binds_every_interface(host: str | None) -> bool:
    """Whether binding ``host`` listens on every interface (an unspecified address).

    Parameters
    ----------
    host : str or None
        As given to the server: an IP address in any spelling the socket layer accepts, a host
        name, ``""`` or None (both mean every interface to ``getaddrinfo`` with ``AI_PASSIVE``).

    Raises
    ------
    ListenAddressError
        ``host`` does not resolve.

    Examples
    --------
    >>> [binds_every_interface(h) for h in ("127.0.0.1", "0", "::0", "::ffff:0.0.0.0")]
    [False, True, True, True]
    """
    try:
        infos = socket.getaddrinfo(
            host or None, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except (socket.gaierror, UnicodeError) as err:
        raise ListenAddressError(f"host: {host!r} does not resolve to an address ({err})") from err
    return any(_unspecified(str(info[4][0])) for info in infos)


def check_listen_address(host: str | None, *, allow_any_address: bool, field: str = "host") -> None:
    """Refuse a listen address that binds every interface unless ``allow_any_address``.

    Parameters
    ----------
    host : str or None
        The address the server is about to bind.
    allow_any_address : bool
        The operator's explicit consent to listen on every interface; a warning is logged.
    field : str
        The name of the setting in error messages (``host``, ``--host``, ``address``).

    Raises
    ------
    ListenAddressError
        ``host`` binds every interface and ``allow_any_address`` is False, or it does not
        resolve.
    """
    if not binds_every_interface(host):
        return
    if not allow_any_address:
        raise ListenAddressError(
            f"{field}: {host!r} listens on every interface (an unspecified address); bind a "
            "specific address, or pass allow_any_address (--allow-any-address) to expose the "
            "service on every network this machine is on"
        )
    _log.warning(
        "%s %r listens on every interface: the service is reachable from every network this "
        "machine is on (allowed by allow_any_address)",
        field,
        host,
    )
