"""A small client for the three inference protocols, and the checks of a well-formed answer.

Shared by `make predict`, the smoke test, the benchmark and the integration tests, so all of them
mean the same thing by "a prediction":

    native  POST /predictions/{model}[/{version}]  image bytes -> {"label", "probabilities", "model_version"}
    v1      POST /v1/models/{model}:predict        {"instances": [{"data": b64}]} -> {"predictions": [...]}
    v2      POST /v2/models/{model}/infer          OIP BYTES input -> outputs label BYTES, probabilities FP32
"""

from __future__ import annotations

import base64
import math
import uuid

import requests

from serving.store import MODEL_NAME

LABELS = ("cat", "dog")


class BadAnswer(AssertionError):
    """The server answered, but not with a well-formed prediction; the message says what is wrong."""


def _b64(image: bytes) -> str:
    return base64.b64encode(image).decode("ascii")


def post_native(
    session: requests.Session,
    url: str,
    image: bytes,
    model: str = MODEL_NAME,
    version: str | None = None,
    timeout: float = 30,
) -> requests.Response:
    path = f"/predictions/{model}" + (f"/{version}" if version else "")
    return session.post(
        url + path, data=image, headers={"Content-Type": "application/octet-stream"}, timeout=timeout
    )


def post_v1(
    session: requests.Session, url: str, images: list[bytes], model: str = MODEL_NAME, timeout: float = 30
) -> requests.Response:
    body = {"instances": [{"data": _b64(image)} for image in images]}
    return session.post(f"{url}/v1/models/{model}:predict", json=body, timeout=timeout)


def v2_request(images: list[bytes], request_id: str | None = None) -> dict:
    return {
        "id": request_id or str(uuid.uuid4()),
        "inputs": [
            {"name": "image", "shape": [len(images)], "datatype": "BYTES", "data": [_b64(i) for i in images]}
        ],
    }


def post_v2(
    session: requests.Session,
    url: str,
    images: list[bytes],
    model: str = MODEL_NAME,
    request_id: str | None = None,
    timeout: float = 30,
) -> requests.Response:
    return session.post(
        f"{url}/v2/models/{model}/infer", json=v2_request(images, request_id), timeout=timeout
    )


def check_prediction(answer: object) -> dict:
    """One native/v1 prediction: label in LABELS, two finite probabilities summing to 1, a version."""
    if not isinstance(answer, dict):
        raise BadAnswer(f"expected a JSON object, got {answer!r:.200}")
    probabilities = answer.get("probabilities")
    if answer.get("label") not in LABELS:
        raise BadAnswer(f"label {answer.get('label')!r} is not one of {LABELS}")
    if not isinstance(probabilities, dict) or set(probabilities) != set(LABELS):
        raise BadAnswer(f"probabilities must have exactly the keys {LABELS}, got {probabilities!r:.200}")
    _check_probabilities([probabilities[label] for label in LABELS])
    if answer["label"] != max(LABELS, key=probabilities.get):
        raise BadAnswer(f"label {answer['label']} is not the most probable class in {probabilities}")
    if not answer.get("model_version"):
        raise BadAnswer("model_version is missing")
    return answer


def check_v1(answer: object, count: int) -> list[dict]:
    predictions = answer.get("predictions") if isinstance(answer, dict) else None
    if not isinstance(predictions, list) or len(predictions) != count:
        raise BadAnswer(f"expected {{'predictions': [...]}} with {count} entries, got {answer!r:.300}")
    return [check_prediction(p) for p in predictions]


def check_v2(answer: object, count: int, model: str = MODEL_NAME, request_id: str | None = None) -> list[str]:
    """An OIP v2 answer: model name and version, echoed id, `label` BYTES [n], `probabilities` FP32 [n, 2]."""
    if not isinstance(answer, dict):
        raise BadAnswer(f"expected a JSON object, got {answer!r:.200}")
    if answer.get("model_name") != model or not answer.get("model_version"):
        raise BadAnswer(f"model_name/model_version missing or wrong in {answer!r:.300}")
    if request_id is not None and answer.get("id") != request_id:
        raise BadAnswer(f"request id {request_id!r} not echoed (got {answer.get('id')!r})")
    outputs = {o.get("name"): o for o in answer.get("outputs", []) if isinstance(o, dict)}
    label, probs = outputs.get("label"), outputs.get("probabilities")
    if not label or label.get("datatype") != "BYTES" or label.get("shape") != [count]:
        raise BadAnswer(f"expected output 'label' BYTES shape [{count}], got {label!r:.300}")
    if not probs or probs.get("datatype") != "FP32" or probs.get("shape") != [count, 2]:
        raise BadAnswer(f"expected output 'probabilities' FP32 shape [{count}, 2], got {probs!r:.300}")
    if any(value not in LABELS for value in label.get("data", [])) or len(label.get("data", [])) != count:
        raise BadAnswer(f"labels must be {count} of {LABELS}, got {label.get('data')!r:.200}")
    flat = probs.get("data", [])
    if len(flat) != 2 * count:
        raise BadAnswer(f"expected {2 * count} probabilities (row-major [{count}, 2]), got {len(flat)}")
    for row in range(count):
        _check_probabilities(flat[2 * row : 2 * row + 2])
    return label["data"]


def _check_probabilities(values: list) -> None:
    if not all(isinstance(p, (int, float)) and math.isfinite(p) and 0 <= p <= 1 for p in values):
        raise BadAnswer(f"probabilities must be finite numbers in [0, 1], got {values}")
    if abs(sum(values) - 1) > 1e-4:
        raise BadAnswer(f"probabilities must sum to 1, got {sum(values)}")
