"""The address a class is shown for a broadcast race, from where the server listens."""

from __future__ import annotations

import pytest

from app import lan


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
