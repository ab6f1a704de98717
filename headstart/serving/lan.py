"""Where this server listens, and where a class can reach it.

A teacher opens the page at 127.0.0.1 on the laptop that serves it; students cannot open
that. So the page asks here for the address to write on the board.
"""

from __future__ import annotations

import errno
import ipaddress
import socket

from headstart.errors import SetupError

LOOPBACK_NAMES = ("localhost", "localhost.localdomain")


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    return host.strip("[]") in ("0.0.0.0", "::", "")


def lan_address() -> str | None:
    """This machine's address on its network: the one its default route leaves from.

    Connecting a UDP socket sends nothing; it only asks the kernel which interface it would
    use. No route (an unplugged laptop) gives None.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: documentation only, never answered
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if is_loopback(address) or is_wildcard(address) else address


def class_address(host: str, port: int, given: str | None = None) -> tuple[str | None, bool]:
    """(``host:port`` for students, whether other machines can connect at all).

    ``given`` (``HEADSTART_CLASS_ADDRESS``, for a proxy or a container) is taken as it is.
    Bound to loopback, no one else can connect. Bound to every interface, students use the
    machine's network address, if it has one. Bound to one address or name, that one.
    """
    if given:
        return given, True
    if is_loopback(host):
        return None, False
    if is_wildcard(host):
        address = lan_address()
        return (f"{address}:{port}" if address else None), True
    return f"{_bracketed(host)}:{port}", True


def where_to_open(host: str, port: int, given: str | None = None) -> str:
    """The line a teacher reads in the terminal: the page's address here, and the class's."""
    here = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "[::1]"}.get(host.strip("[]"), _bracketed(host))
    line = f"open http://{here}:{port} in a browser on this computer"
    address, reachable = class_address(host, port, given)
    if address:
        return f"{line}; a class on its network opens http://{address}"
    if reachable:
        return f"{line}; this computer has no network address for a class to open just now"
    return f"{line}; only this computer can open it (--host 0.0.0.0 serves a class on its network)"


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


HOSTS = "such as 127.0.0.1 (this machine only) or 0.0.0.0 (every network it is on)"
PORTS = "choose another port with --port (or HEADSTART_PORT)"


class ListenError(SetupError):
    """The server cannot listen where it was asked to: a port in use, an address not this machine's."""


def listen(host: str, port: int) -> list[socket.socket]:
    """Sockets bound to ``host:port``, one per address the host names.

    Bound before anything slow loads, so a port already taken (a second server started by
    mistake, say) is named at once, with what to do, rather than after the worker has loaded.
    """
    try:
        found = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(
            f"cannot listen on {host!r}: {exc.strerror}; --host takes an address or name of this machine, {HOSTS}"
        ) from None
    bound: list[socket.socket] = []
    # "::" alone also takes IPv4, so a class on an IPv4 network can connect; beside an IPv4
    # address of its own, an IPv6 socket must leave that port to its sibling.
    both = {info[0] for info in found} >= {socket.AF_INET, socket.AF_INET6}
    for family, kind, proto, _, address in dict.fromkeys(found):
        try:
            sock = socket.socket(family, kind, proto)  # fails where IPv6 is turned off, for one
            bound.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(both))
            sock.bind(address)
        except OSError as exc:
            for done in bound:
                done.close()
            raise ListenError(f"cannot listen on {_bracketed(str(address[0]))}:{port}: {_advice(exc)}") from None
    return bound


def _advice(exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"another program, perhaps another Headstart server, is listening there; stop it, or {PORTS}"
    if exc.errno == errno.EACCES:
        return f"{exc.strerror} (ports below 1024 need root); {PORTS}"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"not an address of this machine; --host takes one, {HOSTS}"
    if exc.errno == errno.EAFNOSUPPORT:
        return f"this machine does not offer that kind of address ({exc.strerror}); --host takes one it does, {HOSTS}"
    return f"{exc.strerror or exc}; {PORTS}"
