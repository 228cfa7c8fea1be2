"""One image -> one HTTP request, and its response -> one prediction, for each inference protocol.

The three routes the server speaks (DESIGN.md, "Inference API"):
- native: `POST {base}/predictions/{model}[/{version}]`, raw image bytes (the only versioned route);
- v1 (KServe): `POST {base}/v1/models/{model}:predict`, `{"instances": [{"data": b64}]}`;
- v2 (Open Inference Protocol): `POST {base}/v2/models/{model}/infer`, one BYTES input.
Anything unexpected in a response raises `BadResponse`, which the caller records against the item.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Any

from handler.preprocess import CLASS_NAMES

PROTOCOLS = ("native", "v1", "v2")


class BadResponse(ValueError):
    """The server answered, but not with a well-formed prediction; the message says what was wrong."""


@dataclass(frozen=True)
class Endpoint:
    """Where and how to ask: the inference base URL (e.g. http://127.0.0.1:8080), model and protocol."""

    base_url: str
    protocol: str = "native"
    model: str = "catsdogs"
    version: str | None = None  # None: the server's default version

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.protocol!r}; choose one of {', '.join(PROTOCOLS)}")
        if self.version and self.protocol != "native":
            # TorchServe 0.12 answers 404 to .../versions/{v}:predict and .../versions/{v}/infer.
            raise ValueError(
                "TorchServe serves an explicit model version on the native route only; "
                "use --protocol native with --model-version"
            )

    @property
    def url(self) -> str:
        base = self.base_url.rstrip("/")
        if self.protocol == "native":
            return f"{base}/predictions/{self.model}" + (f"/{self.version}" if self.version else "")
        if self.protocol == "v1":
            return f"{base}/v1/models/{self.model}:predict"
        return f"{base}/v2/models/{self.model}/infer"


@dataclass(frozen=True)
class Prediction:
    label: str
    probabilities: dict[str, float]
    model_version: str | None


def request_kwargs(protocol: str, image: bytes, request_id: str = "0") -> dict[str, Any]:
    """Keyword arguments for `requests.post` carrying one image in the protocol's format."""
    if protocol == "native":
        return {"data": image, "headers": {"Content-Type": "application/octet-stream"}}
    b64 = base64.b64encode(image).decode("ascii")
    if protocol == "v1":
        return {"json": {"instances": [{"data": b64}]}}
    return {
        "json": {
            "id": request_id,
            "inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [b64]}],
        }
    }


def parse_prediction(protocol: str, body: Any) -> Prediction:
    """A 200 response's JSON body -> the one prediction in it, or BadResponse."""
    try:
        if protocol == "native":
            return _from_native(body, body.get("model_version"))
        if protocol == "v1":
            (entry,) = body["predictions"]
            return _from_native(entry, entry.get("model_version", body.get("model_version")))
        return _from_v2(body)
    except BadResponse:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise BadResponse(f"unexpected {protocol} response shape: {e!r}") from e


def _from_native(entry: dict, version: Any) -> Prediction:
    probabilities = {name: float(entry["probabilities"][name]) for name in CLASS_NAMES}
    return _checked(str(entry["label"]), probabilities, version)


def _from_v2(body: dict) -> Prediction:
    outputs = {output["name"]: output for output in body["outputs"]}
    probs = [float(p) for p in _flat(outputs["probabilities"]["data"])]
    if len(probs) != len(CLASS_NAMES):
        raise BadResponse(f"expected {len(CLASS_NAMES)} probabilities for one image, got {len(probs)}")
    (label,) = _flat(outputs["label"]["data"])
    return _checked(str(label), dict(zip(CLASS_NAMES, probs)), body.get("model_version"))


def _flat(data: list) -> list:
    # v2 allows row-major nested lists as well as flat ones.
    return [x for row in data for x in _flat(row)] if isinstance(data, list) else [data]


def _checked(label: str, probabilities: dict[str, float], version: Any) -> Prediction:
    if label not in CLASS_NAMES:
        raise BadResponse(f"label {label!r} is not one of {CLASS_NAMES}")
    values = list(probabilities.values())
    if not all(math.isfinite(p) and 0.0 <= p <= 1.0 for p in values) or abs(sum(values) - 1.0) > 1e-3:
        raise BadResponse(f"probabilities {probabilities} are not a distribution")
    return Prediction(label, probabilities, None if version is None else str(version))
