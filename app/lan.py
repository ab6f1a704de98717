"""Where a class can reach this server: the address to show students, not the teacher's own.

A teacher opens the page at 127.0.0.1 on the laptop that serves it; students cannot open
that. So the page asks here for the address to write on the board.
"""

from __future__ import annotations

import ipaddress
import socket

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


def class_address(host: str, port: int) -> tuple[str | None, bool]:
    """(``host:port`` for students, whether other machines can connect at all).

    Bound to loopback, no one else can connect. Bound to every interface, students use the
    machine's network address, if it has one. Bound to one address or name, that one.
    """
    if is_loopback(host):
        return None, False
    if is_wildcard(host):
        address = lan_address()
        return (f"{address}:{port}" if address else None), True
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}", True
