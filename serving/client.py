"""The one client of the three inference protocols, and the one check of a well-formed answer.

Shared by `make predict`, the smoke test, the collector, the load test, the benchmark and the
integration tests, so all of them mean the same thing by "a prediction" (docs/openapi.yaml is the
contract; tests/serving/test_openapi.py holds this module to it):

    native  POST /predictions/{model}[/{version}]  image bytes -> {"label", "probabilities", "model_version"}
    v1      POST /v1/models/{model}:predict        {"instances": [{"data": b64}]} -> {"predictions": [...]}
    v2      POST /v2/models/{model}/infer          OIP BYTES input -> outputs label BYTES, probabilities FP32

A label is a verdict: a class name, or "unsure"/"neither" once the handler abstains (issue 14); an
answer may carry `pet_probability` (how likely the photo shows a cat or a dog at all).
Anything unexpected in an answer raises `BadAnswer`, whose message says what is wrong.
"""

from __future__ import annotations

import base64
import math
import uuid
from dataclasses import dataclass
from typing import Any

import requests

from handler.verdict import CLASS_NAMES, VERDICTS
from serving.store import MODEL_NAME

PROTOCOLS = ("native", "v1", "v2")
LABELS = CLASS_NAMES
SUM_TOLERANCE = 1e-4  # probabilities are FP32 on the wire; two of them sum to 1 within far less


class BadAnswer(ValueError):
    """The server answered, but not with a well-formed prediction; the message says what is wrong."""


def route(protocol: str, model: str = MODEL_NAME, version: str | None = None) -> str:
    """The path of `protocol`'s inference route (only the native route takes a version)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if protocol == "native":
        return f"/predictions/{model}" + (f"/{version}" if version else "")
    if version:
        # TorchServe 0.12 answers 404 to .../versions/{v}:predict and .../versions/{v}/infer.
        raise ValueError(
            "TorchServe serves an explicit model version on the native route only; "
            "use --protocol native with --model-version"
        )
    return f"/v1/models/{model}:predict" if protocol == "v1" else f"/v2/models/{model}/infer"


@dataclass(frozen=True)
class Endpoint:
    """Where and how to ask: the inference base URL (e.g. ports.local_url()), model and protocol."""

    base_url: str
    protocol: str = "native"
    model: str = MODEL_NAME
    version: str | None = None  # None: the server's default version

    def __post_init__(self) -> None:
        route(self.protocol, self.model, self.version)  # raises on an unknown protocol or a v1/v2 version

    @property
    def url(self) -> str:
        return self.base_url.rstrip("/") + route(self.protocol, self.model, self.version)


@dataclass(frozen=True)
class Prediction:
    label: str
    probabilities: dict[str, float]
    model_version: str | None
    pet_probability: float | None = None  # absent until the server reports it (issue 14)


# --- requests -----------------------------------------------------------------------------------------
def _b64(image: bytes) -> str:
    return base64.b64encode(image).decode("ascii")


def v2_request(images: list[bytes], request_id: str | None = None) -> dict:
    return {
        "id": request_id or str(uuid.uuid4()),
        "inputs": [
            {"name": "image", "shape": [len(images)], "datatype": "BYTES", "data": [_b64(i) for i in images]}
        ],
    }


def request_kwargs(
    protocol: str, images: bytes | list[bytes], request_id: str | None = None
) -> dict[str, Any]:
    """Keyword arguments for `requests.post` carrying the image(s) in the protocol's format."""
    images = [images] if isinstance(images, (bytes, bytearray)) else list(images)
    if protocol == "native":
        (image,) = images  # the native route takes one image per request
        return {"data": image, "headers": {"Content-Type": "application/octet-stream"}}
    if protocol == "v1":
        return {"json": {"instances": [{"data": _b64(image)} for image in images]}}
    return {"json": v2_request(images, request_id)}


def post(
    session: requests.Session, endpoint: Endpoint, images: bytes | list[bytes], request_id: str | None = None,
    timeout: float = 30,
) -> requests.Response:  # fmt: skip
    return session.post(
        endpoint.url, timeout=timeout, **request_kwargs(endpoint.protocol, images, request_id)
    )


def post_native(
    session: requests.Session, url: str, image: bytes, model: str = MODEL_NAME, version: str | None = None,
    timeout: float = 30,
) -> requests.Response:  # fmt: skip
    return post(session, Endpoint(url, "native", model, version), image, timeout=timeout)


def post_v1(
    session: requests.Session, url: str, images: list[bytes], model: str = MODEL_NAME, timeout: float = 30
) -> requests.Response:
    return post(session, Endpoint(url, "v1", model), images, timeout=timeout)


def post_v2(
    session: requests.Session, url: str, images: list[bytes], model: str = MODEL_NAME,
    request_id: str | None = None, timeout: float = 30,
) -> requests.Response:  # fmt: skip
    return post(session, Endpoint(url, "v2", model), images, request_id, timeout)


# --- answers ------------------------------------------------------------------------------------------
def check_prediction(answer: object) -> dict:
    """One native/v1 prediction: a verdict, two finite probabilities summing to 1, a version, and
    `pet_probability` in [0, 1] when present."""
    if not isinstance(answer, dict):
        raise BadAnswer(f"expected a JSON object, got {answer!r:.200}")
    probabilities = answer.get("probabilities")
    if not isinstance(probabilities, dict) or set(probabilities) != set(LABELS):
        raise BadAnswer(f"probabilities must have exactly the keys {LABELS}, got {probabilities!r:.200}")
    _check_verdict(answer.get("label"), [probabilities[label] for label in LABELS])
    if "pet_probability" in answer:
        _check_unit(answer["pet_probability"], "pet_probability")
    if not answer.get("model_version"):
        raise BadAnswer("model_version is missing")
    return answer


def check_v1(answer: object, count: int) -> list[dict]:
    predictions = answer.get("predictions") if isinstance(answer, dict) else None
    if not isinstance(predictions, list) or len(predictions) != count:
        raise BadAnswer(f"expected {{'predictions': [...]}} with {count} entries, got {answer!r:.300}")
    return [check_prediction(p) for p in predictions]


def check_v2(answer: object, count: int, model: str = MODEL_NAME, request_id: str | None = None) -> list[str]:
    """An OIP v2 answer: model name and version, echoed id, `label` BYTES [n], `probabilities` FP32
    [n, 2] (flat or nested row-major), optionally `pet_probability` FP32 [n]. Returns the labels."""
    return [p.label for p in _v2_predictions(answer, count, model, request_id)]


def parse_prediction(protocol: str, body: Any, model: str = MODEL_NAME) -> Prediction:
    """A 200 answer's JSON body carrying one image's prediction -> that Prediction, or BadAnswer."""
    if protocol == "v2":
        (prediction,) = _v2_predictions(body, 1, model)
        return prediction
    if protocol == "v1":
        (entry,) = check_v1(body, 1)
    else:
        entry = check_prediction(body)
    probabilities = {name: float(entry["probabilities"][name]) for name in LABELS}
    pet = entry.get("pet_probability")
    return Prediction(
        entry["label"], probabilities, str(entry["model_version"]), None if pet is None else float(pet)
    )


def _v2_predictions(
    answer: object, count: int, model: str, request_id: str | None = None
) -> list[Prediction]:
    if not isinstance(answer, dict):
        raise BadAnswer(f"expected a JSON object, got {answer!r:.200}")
    if answer.get("model_name") != model or not answer.get("model_version"):
        raise BadAnswer(f"model_name/model_version missing or wrong in {answer!r:.300}")
    if request_id is not None and answer.get("id") != request_id:
        raise BadAnswer(f"request id {request_id!r} not echoed (got {answer.get('id')!r})")
    outputs = answer.get("outputs")
    outputs = {o.get("name"): o for o in outputs if isinstance(o, dict)} if isinstance(outputs, list) else {}
    labels = _v2_output(outputs, "label", "BYTES", [count])
    probabilities = _v2_output(outputs, "probabilities", "FP32", [count, len(LABELS)])
    pets = _v2_output(outputs, "pet_probability", "FP32", [count]) if "pet_probability" in outputs else None
    predictions = []
    for row, label in enumerate(labels):
        values = probabilities[len(LABELS) * row : len(LABELS) * (row + 1)]
        _check_verdict(label, values)
        if pets is not None:
            _check_unit(pets[row], "pet_probability")
        predictions.append(
            Prediction(label, dict(zip(LABELS, map(float, values))), str(answer["model_version"]),
                       None if pets is None else float(pets[row]))
        )  # fmt: skip
    return predictions


def _v2_output(outputs: dict, name: str, datatype: str, shape: list[int]) -> list:
    """The flat data of output `name`, checked to be `datatype` with `shape`."""
    output = outputs.get(name)
    if not output or output.get("datatype") != datatype or output.get("shape") != shape:
        raise BadAnswer(f"expected output {name!r} {datatype} shape {shape}, got {output!r:.300}")
    data = _flat(output.get("data"))
    if len(data) != math.prod(shape):
        raise BadAnswer(f"output {name!r} has {len(data)} elements for shape {shape}")
    return data


def _flat(data: Any) -> list:
    # v2 allows row-major nested lists as well as flat ones.
    return [x for row in data for x in _flat(row)] if isinstance(data, list) else [data]


def _check_verdict(label: Any, probabilities: list) -> None:
    if label not in VERDICTS:
        raise BadAnswer(f"label {label!r} is not one of {VERDICTS}")
    for p in probabilities:
        _check_unit(p, "probabilities")
    if abs(sum(probabilities) - 1) > SUM_TOLERANCE:
        raise BadAnswer(f"probabilities must sum to 1, got {probabilities} (sum {sum(probabilities)})")
    if label in LABELS and label != LABELS[max(range(len(LABELS)), key=probabilities.__getitem__)]:
        raise BadAnswer(f"label {label} is not the most probable class in {dict(zip(LABELS, probabilities))}")


def _check_unit(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadAnswer(f"{name} must be finite numbers in [0, 1], got {value!r}")
    if not 0 <= value <= 1:
        raise BadAnswer(f"{name} must be in [0, 1], got {value}")
