"""Several OpenAI-compatible endpoints behind one backend (`--base-url` given several times).

Balancing: each request goes to the endpoint that is up and has the fewest requests in flight;
ties go to the endpoint named first, so the choice is a pure function of the pool's state.
Which endpoint answers never changes what is asked: the request body (sampling seed
included) is encoded once per call and sent unchanged to whichever endpoint takes it.

Health (a circuit breaker per endpoint, fed by the outcomes of real requests):

- up: takes requests. A refused connection takes it out at once (nothing listens there);
  other connection failures, timeouts and 5xx take it out after `trip_after` in a row. Any
  answer (a 2xx; a 4xx also shows the server is alive) resets the count.
- out: gets no requests while another endpoint is up. After its cool-down (`cooldown`
  seconds, doubled after each failed probe up to `max_cooldown`) one probe (GET /models,
  through the backend's own sender) is made in the background: an answer brings it back up,
  a failure keeps it out for the next cool-down.
- When every endpoint is out, requests go to the one due back first rather than failing
  unasked; its first answer brings it back.

One endpoint has nowhere else to send a request, so it is never taken out: a single
`--base-url` behaves exactly as it did before pools existed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

TRIP_AFTER = 3
COOLDOWN = 2.0
MAX_COOLDOWN = 60.0

# Kinds of health failure (the backend classifies its exceptions into these).
REFUSED, CONNECTION, TIMEOUT, SERVER_ERROR = "refused", "connection", "timeout", "server_error"
HEALTH_FAILURES = (REFUSED, CONNECTION, TIMEOUT, SERVER_ERROR)
# Failures after which the request certainly got no answer and the endpoint is gone or going:
# sending it elsewhere at once is a failover, not a retry (see OpenAIBackend).
GONE = frozenset({REFUSED, CONNECTION})


class Endpoint:
    """One base URL and its health; `in_flight` is kept by the caller around each request."""

    __slots__ = ("url", "index", "in_flight", "failures", "out_until", "cooldown", "probing",
                 "answered", "failed", "trips")

    def __init__(self, url: str, index: int, cooldown: float) -> None:
        self.url, self.index = url, index
        self.in_flight = 0
        self.failures = 0  # health failures in a row
        self.out_until: float | None = None  # None: up; else (monotonic) when a probe is due
        self.cooldown = cooldown
        self.probing = False
        self.answered = self.failed = self.trips = 0  # counters for reports and tests

    @property
    def up(self) -> bool:
        return self.out_until is None

    def to_json(self) -> dict:
        return {"url": self.url, "up": self.up, "in_flight": self.in_flight, "answered": self.answered,
                "failed": self.failed, "taken_out": self.trips}


class EndpointPool:
    """The endpoints of one backend on one event loop (not thread-safe: one loop uses it).

    `probe(endpoint)` is awaited in the background for an endpoint that is out and due; it
    returns normally when the endpoint answers and raises when it does not."""

    def __init__(self, urls: list[str], probe: Callable[[Endpoint], Awaitable[object]], *,
                 trip_after: int = TRIP_AFTER, cooldown: float = COOLDOWN, max_cooldown: float = MAX_COOLDOWN) -> None:
        if not urls:
            raise ValueError("an endpoint pool needs at least one URL")
        self.endpoints = [Endpoint(u, i, cooldown) for i, u in enumerate(urls)]
        self.single = len(self.endpoints) == 1
        self.trip_after, self.base_cooldown, self.max_cooldown = max(1, trip_after), cooldown, max_cooldown
        self._probe = probe
        self._out = 0  # how many are out: the fast path skips the clock while none is
        self._tasks: set[asyncio.Task] = set()

    # ------------------------------------------------------------ choosing

    def pick(self, avoid: Endpoint | None = None) -> Endpoint:
        """The endpoint for the next request: up, fewest in flight, first named on ties;
        `avoid` (where this request just failed) only when no other endpoint is up."""
        if self.single:
            return self.endpoints[0]
        if self._out:
            self._start_due_probes()
        best = None
        for ep in self.endpoints:
            if ep.out_until is None and ep is not avoid and (best is None or ep.in_flight < best.in_flight):
                best = ep
        if best is not None:
            return best
        if avoid is not None and avoid.up:
            return avoid
        return min(self.endpoints, key=lambda e: (e.out_until, e.index))  # all out: the one due first

    def others_up(self, ep: Endpoint) -> bool:
        """Whether an endpoint other than `ep` is up (a failover has somewhere to go)."""
        return any(e.up and e is not ep for e in self.endpoints)

    # ------------------------------------------------------------ outcomes

    def answered(self, ep: Endpoint) -> None:
        """`ep` answered (any status below 500): it is alive."""
        ep.answered += 1
        if ep.failures:
            ep.failures = 0
        if ep.out_until is not None:
            self._bring_back(ep)

    def failed(self, ep: Endpoint, kind: str | None) -> None:
        """A request to `ep` failed; `kind` is one of HEALTH_FAILURES, or None for a failure
        that says nothing about the endpoint's health (a bad answer, a cancelled call)."""
        ep.failed += 1
        if kind is None or self.single:
            return
        ep.failures += 1
        if ep.out_until is None and (kind == REFUSED or ep.failures >= self.trip_after):
            ep.out_until = time.monotonic() + ep.cooldown
            ep.trips += 1
            self._out += 1

    def _bring_back(self, ep: Endpoint) -> None:
        ep.out_until, ep.failures, ep.cooldown = None, 0, self.base_cooldown
        self._out -= 1

    # ------------------------------------------------------------ probes

    def _start_due_probes(self) -> None:
        now = time.monotonic()
        for ep in self.endpoints:
            if ep.out_until is not None and not ep.probing and now >= ep.out_until:
                ep.probing = True
                task = asyncio.get_running_loop().create_task(self._probe_once(ep))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _probe_once(self, ep: Endpoint) -> None:
        try:
            await self._probe(ep)
        except Exception:  # noqa: BLE001  any failure keeps it out; the reason was seen by requests
            if ep.out_until is not None:
                ep.cooldown = min(self.max_cooldown, ep.cooldown * 2)
                ep.out_until = time.monotonic() + ep.cooldown
        else:
            if ep.out_until is not None:
                self._bring_back(ep)
        finally:
            ep.probing = False

    async def aclose(self) -> None:
        """Cancel probes still running (the backend is closing its connections)."""
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def to_json(self) -> list[dict]:
        return [ep.to_json() for ep in self.endpoints]
