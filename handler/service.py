"""Answer a batch of requests: each is parsed and decoded on its own, all good images share one forward
pass, and every request gets its own answer (a bad one gets a 400 and does not fail the others).

Runtime-neutral: a runtime adapter (handler/ts_handler.py for TorchServe) turns its requests into
RawRequests and the Answers into its responses.

    service = InferenceService(Classifier.load(...), model_name="catsdogs", max_instances=32)
    [answer] = service.answer([RawRequest({"body": jpeg_bytes}, {"body": "image/jpeg"})])
    answer.status, answer.body  # 200, {"label": "cat", "probabilities": {...}, "pet_probability": 0.99,
                                #       "model_version": "1.0"}
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from handler.errors import InferenceError, InvalidInput, ServingError
from handler.inference import Classifier, Prediction
from handler.protocols import ParsedRequest, RawRequest, build_response, parse_request

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # JSON-serialisable
    predictions: tuple[Prediction, ...] = ()
    preprocess_ms: float = 0.0  # parsing + decoding + resizing this request's images

    @classmethod
    def error(cls, error: ServingError, preprocess_ms: float = 0.0) -> Answer:
        return cls(error.status, error.to_json(), preprocess_ms=preprocess_ms)


@dataclasses.dataclass
class _Decoded:
    request: ParsedRequest
    arrays: list[np.ndarray]
    preprocess_ms: float


class InferenceService:
    def __init__(self, classifier: Classifier, model_name: str, max_instances: int) -> None:
        self.classifier = classifier
        self.model_name = model_name
        self.max_instances = max_instances

    def answer(self, requests: Sequence[RawRequest]) -> list[Answer]:
        """One Answer per request, in order. Never raises for anything a client can send."""
        decoded: list[_Decoded | Answer] = [self._decode(request) for request in requests]
        good = [d for d in decoded if isinstance(d, _Decoded)]
        if not good:
            return list(decoded)
        try:
            predictions = self.classifier.predict(np.stack([a for d in good for a in d.arrays]))
        except ServingError as e:
            logger.error("inference failed for a batch of %d requests: %s", len(good), e.message)
            return [d if isinstance(d, Answer) else Answer.error(e, d.preprocess_ms) for d in decoded]
        answers, start = [], 0
        for item in decoded:
            if isinstance(item, Answer):
                answers.append(item)
                continue
            mine = tuple(predictions[start : start + len(item.arrays)])
            start += len(item.arrays)
            body = build_response(item.request, mine, self.model_name, self.classifier.version)
            answers.append(Answer(200, body, mine, item.preprocess_ms))
        return answers

    def _decode(self, request: RawRequest) -> _Decoded | Answer:
        started = time.perf_counter()
        try:
            parsed = parse_request(request, self.max_instances)
            arrays = [self._decode_one(data, name) for data, name in zip(parsed.images, parsed.names)]
        except InvalidInput as e:
            logger.info("rejected a request: %s", e.message)
            return Answer.error(e, _ms_since(started))
        except Exception:  # a defect of ours: answer 500, keep the worker serving the others
            logger.exception("unexpected error while reading a request")
            return Answer.error(
                InferenceError("unexpected error while reading the request"), _ms_since(started)
            )
        return _Decoded(parsed, arrays, _ms_since(started))

    def _decode_one(self, data: bytes, name: str) -> np.ndarray:
        try:
            return self.classifier.decode(data)
        except InvalidInput as e:
            raise InvalidInput(f"{name}: {e.message}") from e


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
