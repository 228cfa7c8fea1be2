"""Send labelled items to a live endpoint with bounded concurrency; one `Result` per item, never an abort.

Every failure a deployment can show (an HTTP error, a malformed answer, a timeout, a refused
connection) is recorded against its item and the run goes on: the batch is a measurement, and the
failures are part of it. `scripts/collect_predictions.py` is the command line.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed

import requests
from tqdm import tqdm

from monitoring.sources import Item
from monitoring.summary import Result
from serving.client import BadAnswer, Endpoint, parse_prediction, post

logger = logging.getLogger(__name__)


class _Sessions:
    """One keep-alive `requests.Session` per thread (a Session is not safe to share across threads)."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._all: list[requests.Session] = []
        self._lock = threading.Lock()

    def get(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            with self._lock:
                self._all.append(session)
        return session

    def close(self) -> None:
        for session in self._all:
            session.close()


def send_one(
    session: requests.Session, endpoint: Endpoint, item: Item, timeout: float, request_id: str
) -> Result:
    """Post one item and turn whatever happens into a Result."""
    status = prediction = error = None
    start = time.perf_counter()
    try:
        response = post(session, endpoint, item.data, request_id, timeout)
        status = response.status_code
        if status == 200:
            prediction = parse_prediction(endpoint.protocol, response.json(), endpoint.model)
        else:
            error = f"http {status}: {response.text[:200]}"
    except requests.Timeout:
        error = f"timeout: no answer within {timeout} s"
    except requests.ConnectionError as e:
        error = f"connection_error: {e}"
    except (BadAnswer, ValueError) as e:  # ValueError: the body was not JSON
        error = f"bad_response: {e}"
    except requests.RequestException as e:
        error = f"request_error: {e}"
    latency_ms = (time.perf_counter() - start) * 1000.0
    return Result(
        file=item.file,
        true_label=item.label,
        predicted_label=prediction.label if prediction else None,
        probabilities=prediction.probabilities if prediction else None,
        latency_ms=round(latency_ms, 3),
        model_version=prediction.model_version if prediction else None,
        status=status,
        error=error,
    )


def collect(
    items: Sequence[Item],
    endpoint: Endpoint,
    concurrency: int = 4,
    timeout: float = 10.0,
    progress: bool = True,
) -> list[Result]:
    """Send every item (at most `concurrency` in flight); results come back in the items' order."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    sessions = _Sessions()
    results: list[Result | None] = [None] * len(items)

    def work(i: int) -> None:
        results[i] = send_one(sessions.get(), endpoint, items[i], timeout, request_id=str(i))

    try:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            futures = [pool.submit(work, i) for i in range(len(items))]
            with tqdm(total=len(items), unit="img", disable=not progress, desc=endpoint.protocol) as bar:
                for future in as_completed(futures):
                    future.result()  # send_one records every request failure; this re-raises only bugs
                    bar.update()
    finally:
        sessions.close()
    failed = sum(1 for r in results if not r.ok)
    if failed:
        logger.warning("%d of %d requests failed", failed, len(items))
    return results
