"""Listen addresses are judged by what they bind (S1, issue 12 item 3): every spelling of the
unspecified address is refused unless the operator allows it, with a warning when allowed.

The spellings come from the standards and the C library, not from our code: POSIX inet_aton's
short and hexadecimal IPv4 forms, RFC 4291's compressed and full IPv6 forms and IPv4-mapped
addresses. Each is first checked to really bind every interface on this machine (a socket bound
to it reports an unspecified address), so the test cannot pass on a spelling that the system
would in fact bind to one address.
"""

from __future__ import annotations

import ipaddress
import logging
import socket

import pytest

from drready.openadr.vtn.server import uvicorn_config
from drready.openadr.vtn.settings import VtnSettings
from drready.security.listen import (
    ListenAddressError,
    binds_every_interface,
    check_listen_address,
)
from drready.security.tokens import ClientRegistry

EVERY_INTERFACE_V4 = ["0", "0.0", "0.0.0", "0.0.0.0", "0x0", "00", "000.000.000.000", ""]
EVERY_INTERFACE_V6 = ["::", "::0", "0::0", "0:0:0:0:0:0:0:0", "::ffff:0.0.0.0", "0000::"]
ONE_INTERFACE = ["127.0.0.1", "127.1", "0x7f000001", "::1", "localhost", "127.0.0.2"]


def _bound_address(host: str) -> str:
    """The address a listening socket really gets for ``host`` on this machine."""
    family, kind, proto, _, sockaddr = socket.getaddrinfo(
        host or None, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    with socket.socket(family, kind, proto) as sock:
        sock.bind(sockaddr)
        return str(sock.getsockname()[0])


def _is_unspecified(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return ip.is_unspecified or (mapped is not None and mapped.is_unspecified)


@pytest.mark.parametrize("host", EVERY_INTERFACE_V4 + EVERY_INTERFACE_V6)
def test_every_spelling_of_every_interface_is_refused(host: str) -> None:
    assert _is_unspecified(_bound_address(host)), f"{host!r} binds one address here"
    assert binds_every_interface(host)
    with pytest.raises(ListenAddressError, match=r"^--host: .* listens on every interface"):
        check_listen_address(host, allow_any_address=False, field="--host")


@pytest.mark.parametrize("host", ONE_INTERFACE)
def test_specific_addresses_pass_silently(host: str, caplog: pytest.LogCaptureFixture) -> None:
    assert not _is_unspecified(_bound_address(host))
    with caplog.at_level(logging.WARNING, logger="drready.security"):
        check_listen_address(host, allow_any_address=False)
    assert not caplog.records


def test_allowed_every_interface_is_logged_as_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="drready.security"):
        check_listen_address("::0", allow_any_address=True)
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "every interface" in caplog.records[0].getMessage()


def test_a_host_that_does_not_resolve_is_a_clear_error() -> None:
    with pytest.raises(ListenAddressError, match=r"^host: 'no-such-host\.invalid' does not"):
        check_listen_address("no-such-host.invalid", allow_any_address=False)


@pytest.mark.parametrize("host", ["0", "::0", "0x0"])
def test_the_vtn_refuses_them(host: str) -> None:
    registry = ClientRegistry(signing_key=b"k" * 32)
    with pytest.raises(ValueError, match="listens on every interface"):
        uvicorn_config(VtnSettings(), registry, host=host, insecure_http=True)
