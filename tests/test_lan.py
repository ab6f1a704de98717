"""The address a class is shown for a broadcast race, from where the server listens."""

from __future__ import annotations

import errno
import socket

import pytest

from headstart.serving import lan


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.1.1", "localhost", "::1", "[::1]"])
def test_a_server_on_loopback_cannot_be_reached_by_a_class(host: str) -> None:
    assert lan.class_address(host, 8000) == (None, False)


def test_a_server_on_every_interface_shows_this_machines_network_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lan, "lan_address", lambda: "192.168.1.23")
    assert lan.class_address("0.0.0.0", 8000) == ("192.168.1.23:8000", True)
    assert lan.class_address("::", 8080) == ("192.168.1.23:8080", True)
    monkeypatch.setattr(lan, "lan_address", lambda: None)  # no network: reachable, address unknown
    assert lan.class_address("0.0.0.0", 8000) == (None, True)


def test_a_server_on_one_address_shows_that_one() -> None:
    assert lan.class_address("192.168.1.5", 8080) == ("192.168.1.5:8080", True)
    assert lan.class_address("fe80::1", 8000) == ("[fe80::1]:8000", True)
    assert lan.class_address("teacher.local", 8000) == ("teacher.local:8000", True)


def test_the_network_address_is_never_loopback() -> None:
    address = lan.lan_address()  # this machine's; None where it has no route
    assert address is None or not lan.is_loopback(address)


def test_listening_binds_where_asked_and_names_a_port_in_use() -> None:
    sockets = lan.listen("127.0.0.1", 0)
    try:
        (taken,) = sockets
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(lan.ListenError) as caught:
            lan.listen("127.0.0.1", port)
    finally:
        for sock in sockets:
            sock.close()
    said = f"cannot listen on 127.0.0.1:{port}: another program, perhaps another Headstart server, is listening there"
    assert said in str(caught.value) and "--port (or HEADSTART_PORT)" in str(caught.value)
    (again,) = lan.listen("127.0.0.1", port)  # nothing half-bound was left holding it
    again.close()


@pytest.mark.parametrize(
    ("host", "said"),
    [
        ("no-such-host.invalid", "cannot listen on 'no-such-host.invalid': "),
        ("192.0.2.1", "cannot listen on 192.0.2.1:0: not an address of this machine; --host takes one"),
    ],
)
def test_listening_on_an_address_that_is_not_this_machines_says_what_host_takes(host: str, said: str) -> None:
    with pytest.raises(lan.ListenError) as caught:
        lan.listen(host, 0)
    assert said in str(caught.value) and "0.0.0.0 (every network it is on)" in str(caught.value)


def test_listening_on_ipv6_where_it_is_turned_off_says_what_host_takes(monkeypatch: pytest.MonkeyPatch) -> None:
    real = socket.socket

    def without_ipv6(family: int = socket.AF_INET, *args: object) -> socket.socket:
        if family == socket.AF_INET6:
            raise OSError(errno.EAFNOSUPPORT, "Address family not supported by protocol")
        return real(family, *args)

    monkeypatch.setattr(lan.socket, "socket", without_ipv6)
    with pytest.raises(lan.ListenError) as caught:
        lan.listen("::", 0)
    assert str(caught.value) == (
        "cannot listen on [::]:0: this machine does not offer that kind of address (Address family not supported "
        "by protocol); --host takes one it does, such as 127.0.0.1 (this machine only) or 0.0.0.0 (every network it is on)"
    )


def test_listening_on_every_ipv6_address_lets_an_ipv4_class_in_too() -> None:
    (sock,) = lan.listen("::", 0)
    with sock:
        sock.listen()
        socket.create_connection(("127.0.0.1", sock.getsockname()[1]), timeout=2).close()  # refused if IPv6 only


def test_the_terminal_says_where_to_open_the_page_here_and_for_a_class(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lan, "lan_address", lambda: "192.168.1.23")
    here = "open http://127.0.0.1:8000 in a browser on this computer"
    assert (
        lan.where_to_open("127.0.0.1", 8000)
        == f"{here}; only this computer can open it (--host 0.0.0.0 serves a class on its network)"
    )
    assert lan.where_to_open("0.0.0.0", 8000) == f"{here}; a class on its network opens http://192.168.1.23:8000"
    assert (
        lan.where_to_open("0.0.0.0", 8000, "class.example.org")
        == f"{here}; a class on its network opens http://class.example.org"
    )
    assert lan.where_to_open("::", 80).startswith("open http://[::1]:80 in a browser")
    monkeypatch.setattr(lan, "lan_address", lambda: None)
    assert lan.where_to_open("0.0.0.0", 8000).endswith("; this computer has no network address for a class to open just now")
