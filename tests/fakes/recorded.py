"""What the local fake platforms share besides their HTTP server: waiting for a condition,
a manual clock, the answer a request handler raises, what an integration answered a request
the fake sent it, and the record of calls with scripted failures."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")
C = TypeVar("C")  # a fake's record of one call
F = TypeVar("F")  # a fake's scripted failure


def wait_for(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.02,
    message: str | None = None,
) -> T:
    """Poll ``predicate`` until it returns something truthy and return that value.

    Raises ``TimeoutError`` after ``timeout`` seconds (real time), naming what was awaited.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            what = message or getattr(predicate, "__name__", "condition")
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}; last value: {value!r}")
        time.sleep(interval)


class ManualClock:
    """A clock for tests: ``clock()`` is the time, :meth:`advance` moves it on."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


class Reply(Exception):
    """Raised inside a handler to answer at once: status, body, headers."""

    def __init__(self, status: int, body: Any = None, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


@dataclass(frozen=True)
class Delivered:
    """What an integration answered a request the fake sent it."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        try:
            return json.loads(self.body.decode("utf-8") or "null")
        except ValueError:
            return None


@dataclass(frozen=True)
class HttpCall:
    """One HTTP request a fake received and what it answered (see each fake's ``Call``)."""

    op: str
    method: str
    path: str
    params: dict[str, Any]
    json: Any
    text: str
    headers: dict[str, str]
    time: float
    status: int = 200
    response: Any = None
    response_headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class Sendable(Protocol):
    """A request the fake sends: where (None: from configuration), raw body, headers."""

    @property
    def url(self) -> str | None: ...
    @property
    def body(self) -> bytes: ...
    @property
    def headers(self) -> dict[str, str]: ...


def send(outgoing: Sendable, url: str | None = None, timeout: float = 10.0) -> Delivered:
    """POST ``outgoing`` to ``url`` (default: its own) and return the answer, whatever its status."""
    target = url or outgoing.url
    if not target:
        raise ValueError("no URL to send to")
    request = urllib.request.Request(target, data=outgoing.body, headers=outgoing.headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - local test URLs
            return Delivered(response.status, dict(response.headers.items()), response.read())
    except urllib.error.HTTPError as error:
        return Delivered(error.code, dict(error.headers.items()), error.read())


class CallRecord(Generic[C, F]):
    """The calls a fake received and the failures scripted for its next ones.

    A fake sets ``_lock`` (a reentrant lock), ``_calls`` and ``_faults`` in its constructor;
    its ``fail()`` queues a platform fault with :meth:`_script_fault`, its request handling
    takes one with :meth:`_take_fault` (lock held) and records the call with :meth:`_record`.
    """

    _lock: threading.RLock
    _calls: list[C]
    _faults: dict[str, deque[F]]
    # The record's field naming the operation; a fault scripted under ``_any_op`` stands for
    # any operation without one of its own (None: no such name).
    _op_field = "op"
    _any_op: str | None = "*"

    def calls(self, op: str | None = None) -> list[C]:
        """Every request received, oldest first, optionally only those of ``op``."""
        with self._lock:
            return [c for c in self._calls if op is None or self._op_of(c) == op]

    def clear_calls(self) -> None:
        """Forget recorded calls (the platform's state stays)."""
        with self._lock:
            self._calls.clear()

    def wait_for(
        self,
        predicate: Callable[[], T],
        timeout: float = 10.0,
        interval: float = 0.02,
        message: str | None = None,
    ) -> T:
        """:func:`wait_for`, with the calls received so far in the timeout message."""
        try:
            return wait_for(predicate, timeout=timeout, interval=interval, message=message)
        except TimeoutError as exc:
            seen = ", ".join(self._summary(c) for c in self.calls())
            raise TimeoutError(f"{exc}; calls so far: [{seen or 'none'}]") from None

    def _op_of(self, call: C) -> str:
        return str(getattr(call, self._op_field))

    def _summary(self, call: C) -> str:
        """``op->status`` (and the platform's error code, if any) for timeout messages."""
        return f"{self._op_of(call)}->{getattr(call, 'status')}"  # noqa: B009 - any record type

    def _record(self, call: C) -> None:
        self._calls.append(call)

    def _script_fault(self, op: str, times: int, make: Callable[[], F]) -> None:
        """Queue ``times`` faults for the next calls of ``op``."""
        with self._lock:
            queue = self._faults.setdefault(op, deque())
            for _ in range(times):
                queue.append(make())

    def _take_fault(self, op: str) -> F | None:
        """The next fault scripted for ``op`` (or for any operation), taken off its queue."""
        queue = self._faults.get(op)
        if not queue and self._any_op is not None:
            queue = self._faults.get(self._any_op)
        return queue.popleft() if queue else None
