"""Limits a client meets: per address as well as in all, so no one client can stop the server.

Each table here is bounded: it forgets the least recently seen addresses past ``MAX_KEYS``, so
a client cycling through addresses or ids cannot grow the server's memory through it either.
"""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping

MAX_KEYS = 10_000  # addresses (or other keys) a table remembers at once


class Refused(Exception):
    """A request the server will not take; code and message go to the client as an error,
    with ``status`` as an HTTP request's answer."""

    status = 409  # it conflicts with what the server holds now

    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.field = code, message, field


class NotFound(Refused):
    """Something named that the server does not have: a race, or a class code."""

    status = 404


class TooMany(Refused):
    """A limit reached: of races, connections, messages or guesses, per address or in all."""

    status = 429


class Rate:
    """At most ``count`` events per ``per_s`` seconds for each key, over a sliding window."""

    def __init__(self, count: int, per_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.count, self.per_s, self._clock = count, per_s, clock
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def allow(self, key: str) -> bool:
        """Count one event for ``key`` if the window has room for it; False, and nothing counted, if not."""
        now = self._clock()
        times = self._seen.pop(key, None) or deque()
        while times and now - times[0] >= self.per_s:
            times.popleft()
        allowed = len(times) < self.count
        if allowed:
            times.append(now)
        self._seen[key] = times  # most recently seen last
        while len(self._seen) > MAX_KEYS:
            self._seen.popitem(last=False)
        return allowed

    def exhausted(self, key: str) -> bool:
        """Whether ``key`` has used the whole window, counting nothing."""
        now, times = self._clock(), self._seen.get(key, ())
        return sum(1 for t in times if now - t < self.per_s) >= self.count

    def describe(self, what: str) -> str:
        """The limit in words: '6 broadcasts a minute'."""
        return f"{self.count} {what} {'a minute' if self.per_s == 60 else f'per {self.per_s:g} s'}"


class Budget:
    """At most ``amount`` (bytes, say) per ``per_s`` seconds for each key, summed over a sliding
    window kept in ``BUCKETS`` buckets, so a key's memory is bounded however often it spends."""

    BUCKETS = 60

    def __init__(self, amount: float, per_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.amount, self.per_s, self._clock = amount, per_s, clock
        self._spent: OrderedDict[str, dict[int, float]] = OrderedDict()

    def _window(self, key: str) -> dict[int, float]:
        bucket = int(self._clock() * self.BUCKETS / self.per_s)
        spent = self._spent.pop(key, None) or {}
        spent = {b: v for b, v in spent.items() if bucket - b < self.BUCKETS}
        self._spent[key] = spent  # most recently seen last
        while len(self._spent) > MAX_KEYS:
            self._spent.popitem(last=False)
        return spent

    def spend(self, key: str, amount: float) -> bool:
        """Count ``amount`` for ``key`` if the window has room for it; False, and nothing counted, if not."""
        spent = self._window(key)
        if sum(spent.values()) + amount > self.amount:
            return False
        bucket = int(self._clock() * self.BUCKETS / self.per_s)
        spent[bucket] = spent.get(bucket, 0.0) + amount
        return True

    def left(self, key: str) -> float:
        return max(0.0, self.amount - sum(self._window(key).values()))


def client_address(peer: str | None, headers: Mapping[str, str], header: str | None, proxies: tuple[str, ...]) -> str:
    """The address a request came from: its peer, or, when that peer is a trusted proxy, the
    address the proxy names in ``header`` (its last hop: the one the proxy itself saw)."""
    peer = peer or "unknown"
    if header is None or peer not in proxies:
        return peer
    forwarded = [hop.strip() for hop in headers.get(header.lower(), "").split(",") if hop.strip()]
    if not forwarded:
        return peer
    try:
        return str(ipaddress.ip_address(forwarded[-1]))
    except ValueError:
        return peer
