"""Closed-loop load: N clients each send one request after another for a bounded time and count.

    result = run_load(Endpoint(server.inference_url), image, clients=8, duration_s=10)
    result.throughput, result.latency_ms["p99"], result.failures

`during` runs in the caller's thread while the clients keep going (kill a worker, switch versions);
its return value comes back in `LoadResult.action`. Every request is recorded with its start time,
so failures can be placed relative to the action.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from monitoring.collect import send_one
from monitoring.sources import Item
from monitoring.summary import Result, percentiles
from serving.client import Endpoint


@dataclass(frozen=True)
class Call:
    started: float  # seconds since the load began
    result: Result


@dataclass
class LoadResult:
    calls: list[Call]
    elapsed_s: float
    action: Any = None
    action_started: float | None = None  # seconds since the load began
    extra: dict = field(default_factory=dict)

    @property
    def failures(self) -> list[Call]:
        return [c for c in self.calls if not c.result.ok]

    @property
    def succeeded(self) -> int:
        return len(self.calls) - len(self.failures)

    @property
    def throughput(self) -> float:
        """Successful requests per second."""
        return self.succeeded / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def latency_ms(self) -> dict[str, float | None]:
        return percentiles([c.result.latency_ms for c in self.calls if c.result.ok])

    def versions(self) -> set[str | None]:
        return {c.result.model_version for c in self.calls if c.result.ok}


def run_load(
    endpoint: Endpoint,
    image: bytes,
    clients: int = 8,
    duration_s: float = 10.0,
    max_requests: int = 100_000,
    timeout: float = 10.0,
    during: Callable[[], Any] | None = None,
    during_at_s: float = 0.0,
) -> LoadResult:
    """Run `clients` request loops until `duration_s` has passed or `max_requests` were sent."""
    item = Item("load", "cat", image)  # the label is irrelevant here; answers are checked for shape only
    calls: list[Call] = []
    lock = threading.Lock()
    stop = threading.Event()
    begin = time.perf_counter()
    deadline = begin + duration_s

    def client(number: int) -> None:
        with requests.Session() as session:
            sent = 0
            while not stop.is_set() and time.perf_counter() < deadline:
                with lock:
                    if len(calls) >= max_requests:
                        return
                started = time.perf_counter() - begin
                result = send_one(session, endpoint, item, timeout, request_id=f"{number}-{sent}")
                sent += 1
                with lock:
                    calls.append(Call(started, result))

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    for thread in threads:
        thread.start()
    outcome = LoadResult([], 0.0)
    try:
        if during is not None:
            time.sleep(max(0.0, during_at_s - (time.perf_counter() - begin)))
            outcome.action_started = time.perf_counter() - begin
            outcome.action = during()
    except BaseException:
        stop.set()
        raise
    finally:
        for thread in threads:
            thread.join(timeout=duration_s + timeout + 5)
    outcome.calls = sorted(calls, key=lambda c: c.started)
    # The clients' own span: an action that outlasts the load must not dilute the throughput.
    outcome.elapsed_s = max((c.started + c.result.latency_ms / 1000 for c in calls), default=0.0)
    return outcome
