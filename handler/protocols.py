"""Recognise each request's protocol, take the images out of it, and answer in the same protocol.

One server speaks three protocols, recognised per request (never by a server-wide setting):
- native (`POST /predictions/catsdogs`): the image as the raw body or a multipart field `data` or
  `file` -> `{"label", "probabilities", "pet_probability", "model_version"}`, where `label` is the
  answer: cat, dog, unsure or neither (handler/verdict.py);
- KServe v1 (`POST /v1/models/catsdogs:predict`): `{"instances": [{"data" | "b64": <base64>}, ...]}`
  -> `{"predictions": [<native answer>, ...]}`;
- Open Inference Protocol v2 (`POST /v2/models/catsdogs/infer`): one BYTES input whose elements are
  base64 images, shape [n] or [n, 1] -> `{"model_name", "model_version", "id", "outputs": [label
  BYTES [n], probabilities FP32 [n, classes], pet_probability FP32 [n]]}`.
A request arrives as its fields (TorchServe: raw body under `body`, multipart fields by name, JSON
bodies already parsed) plus each field's content type. The JSON shape tells v1 from v2.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

from handler.errors import InvalidInput
from handler.inference import Prediction

IMAGE_FIELDS = ("data", "file", "body")  # multipart field names first, then the raw body
USAGE = (
    "send the image as the body with Content-Type image/* or application/octet-stream, as a multipart "
    "field 'data' or 'file', or a KServe v1 {'instances': [...]} or OIP v2 {'inputs': [...]} JSON body"
)


class Protocol(enum.Enum):
    NATIVE = "native"
    KSERVE_V1 = "kserve-v1"
    OIP_V2 = "oip-v2"


@dataclasses.dataclass(frozen=True)
class RawRequest:
    fields: Mapping[str, Any]
    content_types: Mapping[str, str] = dataclasses.field(default_factory=dict)  # per field


@dataclasses.dataclass(frozen=True)
class ParsedRequest:
    protocol: Protocol
    images: tuple[bytes, ...]
    names: tuple[str, ...]  # where each image came from, for error messages: "instances[2]"
    request_id: str | None = None  # OIP v2 `id`, echoed in the answer


def parse_request(request: RawRequest, max_instances: int) -> ParsedRequest:
    """Recognise the protocol and extract the encoded images; InvalidInput names what is wrong."""
    name = next((f for f in IMAGE_FIELDS if f in request.fields), None)
    if name is None:
        found = sorted(request.fields)
        raise InvalidInput(f"no image in the request (fields: {found}); {USAGE}")
    value = request.fields[name]
    content_type = request.content_types.get(name, "")
    if isinstance(value, (bytes, bytearray)):
        if "json" not in content_type.lower():
            if not value:
                raise InvalidInput(f"the request body is empty; {USAGE}")
            return ParsedRequest(Protocol.NATIVE, (bytes(value),), ("image",))
        value = _load_json(value)  # TorchServe forwards JSON it could not parse as bytes
    if isinstance(value, str):
        raise InvalidInput(
            f"field '{name}' is text ({content_type or 'no content type'}), not an image; {USAGE}"
        )
    if isinstance(value, dict) and ("instances" in value) != ("inputs" in value):
        if "instances" in value:
            return _parse_kserve_v1(value, max_instances)
        return _parse_oip_v2(value, max_instances)
    raise InvalidInput(
        "a JSON body must be an object with either 'instances' (KServe v1) or 'inputs' (OIP v2)"
    )


def build_response(
    request: ParsedRequest, predictions: Sequence[Prediction], model_name: str, version: str
) -> Any:
    """The answer to `request`, in its protocol."""
    if request.protocol is Protocol.NATIVE:
        return predictions[0].to_json(version)
    if request.protocol is Protocol.KSERVE_V1:
        return {"predictions": [p.to_json(version) for p in predictions]}
    response: dict[str, Any] = {"model_name": model_name, "model_version": version}
    if request.request_id is not None:
        response["id"] = request.request_id
    classes = len(predictions[0].probabilities)
    response["outputs"] = [
        {
            "name": "label",
            "datatype": "BYTES",
            "shape": [len(predictions)],
            "data": [p.label for p in predictions],
        },
        {
            "name": "probabilities",
            "datatype": "FP32",
            "shape": [len(predictions), classes],
            "data": [value for p in predictions for value in p.probabilities.values()],
        },
        {
            "name": "pet_probability",
            "datatype": "FP32",
            "shape": [len(predictions)],
            "data": [p.pet_probability for p in predictions],
        },
    ]
    return response


def _load_json(raw: bytes | bytearray) -> Any:
    try:
        return json.loads(bytes(raw).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InvalidInput(f"malformed JSON body: {e}") from e
    except RecursionError as e:
        raise InvalidInput("malformed JSON body: nested too deeply") from e


def _parse_kserve_v1(body: dict, max_instances: int) -> ParsedRequest:
    instances = body["instances"]
    if not isinstance(instances, list) or not instances:
        raise InvalidInput("'instances' must be a non-empty list of {'data': <base64 image>} objects")
    _check_count(len(instances), max_instances)
    images, names = [], []
    for i, instance in enumerate(instances):
        name = f"instances[{i}]"
        key = next((k for k in ("data", "b64") if isinstance(instance, dict) and k in instance), None)
        if key is None:
            raise InvalidInput(f"{name} must be an object with a base64 image under 'data' or 'b64'")
        images.append(_b64decode(instance[key], f"{name}.{key}"))
        names.append(name)
    return ParsedRequest(Protocol.KSERVE_V1, tuple(images), tuple(names))


def _parse_oip_v2(body: dict, max_instances: int) -> ParsedRequest:
    inputs = body["inputs"]
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        raise InvalidInput("'inputs' must hold exactly one tensor object: the images, datatype BYTES")
    tensor = inputs[0]
    label = f"input '{tensor.get('name', '')}'"
    if tensor.get("datatype") != "BYTES":
        raise InvalidInput(
            f"{label} has datatype {tensor.get('datatype')!r}; expected 'BYTES' (base64 images)"
        )
    data = _flatten(tensor.get("data"))
    shape = tensor.get("shape")
    if not _is_image_shape(shape) or math.prod(shape) != len(data) or not data:
        raise InvalidInput(
            f"{label} has shape {shape!r} and {len(data)} elements; "
            "expected shape [n] or [n, 1] for n >= 1 images"
        )
    _check_count(len(data), max_instances)
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInput(f"'id' must be a string, got {type(request_id).__name__}")
    names = tuple(f"inputs[0].data[{i}]" for i in range(len(data)))
    images = tuple(_b64decode(element, name) for element, name in zip(data, names))
    return ParsedRequest(Protocol.OIP_V2, images, names, request_id)


def _flatten(data: Any) -> list:
    """OIP allows tensor data flat or nested in row-major order."""
    if not isinstance(data, list):
        return []
    return [x for item in data for x in (_flatten(item) if isinstance(item, list) else [item])]


def _is_image_shape(shape: Any) -> bool:
    return (
        isinstance(shape, list)
        and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        and (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1))
    )


def _check_count(count: int, max_instances: int) -> None:
    if count > max_instances:
        raise InvalidInput(f"{count} images in one request; the limit is {max_instances}")


def _b64decode(value: Any, name: str) -> bytes:
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a base64 string, got {type(value).__name__}")
    try:
        # Line breaks are common (`base64` wraps at 76 columns); anything else outside the alphabet is not.
        data = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as e:
        raise InvalidInput(f"{name} is not valid base64: {e}") from e
    if not data:
        raise InvalidInput(f"{name} is empty")
    return data
