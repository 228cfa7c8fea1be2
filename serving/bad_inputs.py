"""The one corpus of malformed requests over the three protocols, and what the server must answer.

    for case in bad_inputs(photo, max_instances=32):
        path, kwargs = case.http(MODEL_NAME)         # requests.post(url + path, **kwargs)
        fields, content_types = case.worker_fields()  # what TorchServe's worker hands the handler

Used by the handler's unit tests (every case that reaches the handler gets 400 and a message holding
`words`), the live protocol tests (the status over HTTP) and the reliability tests (only 4xx, no worker
dies, the answers do not change). A case the frontend answers itself (413 over the size limit, 404 for
an unknown version) has no `words` and never reaches the handler.
"""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib
from dataclasses import dataclass
from typing import Any

from PIL import Image

from serving.client import route

JSON = "application/json"
OCTETS = "application/octet-stream"
OVER_SIZE_LIMIT = 9 * 1024 * 1024  # bytes: over TorchServe's max_request_size in every shipped config


@dataclass(frozen=True)
class BadInput:
    kind: str
    protocol: str  # native | v1 | v2: which route it is posted to
    body: Any  # bytes are sent as they are (with content_type); anything else as a JSON body
    content_type: str = OCTETS
    field: str | None = None  # a multipart field name; None: the body itself
    words: str | None = None  # the handler's 400 message holds these; None: the frontend answers
    status: int = 400
    version: str | None = None  # a model version in the native route

    def http(self, model: str) -> tuple[str, dict[str, Any]]:
        """(path, keyword arguments of requests.post) for this case."""
        path = route(self.protocol, model, self.version)
        if self.field is not None:
            return path, {"files": {self.field: ("upload", self.body, self.content_type)}}
        if isinstance(self.body, (bytes, bytearray)):
            return path, {"data": bytes(self.body), "headers": {"Content-Type": self.content_type}}
        return path, {"json": self.body}

    def worker_fields(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The request as TorchServe 0.12's worker hands it to the handler: the raw body under `body`
        or each multipart field by name, JSON parsed when it parses, text/* decoded (ts/protocol/
        otf_message_handler.py), with each field's content type."""
        name = self.field or "body"
        content_type = self.content_type if isinstance(self.body, (bytes, bytearray)) else JSON
        value: Any = self.body
        if isinstance(value, (bytes, bytearray)):
            value = bytearray(value)
            if content_type == JSON:
                try:
                    value = json.loads(bytes(value).decode("utf-8"))
                except ValueError:
                    pass  # the worker forwards JSON it cannot parse as bytes
            elif content_type.startswith("text"):
                value = bytes(value).decode("utf-8")
        return {name: value}, {name: content_type}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def png(size: tuple[int, int] = (4, 4)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels: a decompression bomb costs nothing to build."""
    data = bytearray(png((1, 1)))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


def v2_body(data: list, **tensor) -> dict:
    """An OIP v2 body with one BYTES input holding `data`; `tensor` overrides any of its keys."""
    return {"id": "bad", "inputs": [{"name": "image", "shape": [len(data)], "datatype": "BYTES", "data": data,
                                     **tensor}]}  # fmt: skip


def bad_inputs(photo: bytes, max_instances: int) -> list[BadInput]:
    """Every kind of malformed request we know of; `photo` is a good JPEG, `max_instances` the handler's
    per-request image limit."""
    truncated, good, tiny = photo[: len(photo) // 3], b64(photo), b64(png())
    too_many = max_instances + 1
    return [
        # native: raw bodies
        BadInput("native: empty body", "native", b"", words="body is empty"),
        BadInput("native: random bytes", "native", bytes(range(256)) * 20, words="not a recognised image"),
        BadInput("native: truncated JPEG", "native", truncated, "image/jpeg", words="truncated"),
        BadInput("native: truncated PNG", "native", png((64, 64))[:60], "image/png", words="truncated"),
        BadInput("native: text", "native", b"hello, I am not a cat", "text/plain", words="is text"),
        BadInput(
            "native: SVG",
            "native",
            b"<svg xmlns='http://www.w3.org/2000/svg'/>",
            "image/svg+xml",
            words="not a recognised image",
        ),  # fmt: skip
        BadInput(
            "native: decompression bomb header",
            "native",
            png_claiming(8_000, 8_000),
            "image/png",
            words="the limit is",
        ),  # fmt: skip
        BadInput(
            "native: huge bomb header",
            "native",
            png_claiming(50_000, 50_000),
            "image/png",
            words="image too large",
        ),  # fmt: skip
        BadInput(
            "native: GIF magic, no image",
            "native",
            b"GIF89a" + b"\x00" * 20,
            "image/gif",
            words="not a recognised image",
        ),  # fmt: skip
        BadInput(
            "native: multipart, empty file", "native", b"", "image/jpeg", field="data", words="is empty"
        ),
        BadInput(
            "native: multipart, truncated file",
            "native",
            truncated,
            "image/jpeg",
            field="file",
            words="truncated",
        ),  # fmt: skip
        BadInput(
            "native: multipart, no image field",
            "native",
            b"1",
            "text/plain",
            field="x",
            words="no image in the request",
        ),  # fmt: skip
        BadInput("native: body over the size limit", "native", b"\xff" * OVER_SIZE_LIMIT, status=413),
        BadInput("native: unknown version", "native", photo, "image/jpeg", version="9.9", status=404),
        # KServe v1
        BadInput("v1: malformed JSON", "v1", b'{"instances": [', JSON, words="malformed JSON"),
        BadInput("v1: JSON array, not object", "v1", [1, 2, 3], words="'instances' (KServe v1) or 'inputs'"),
        BadInput("v1: no instances", "v1", {"images": []}, words="'instances' (KServe v1) or 'inputs'"),
        BadInput("v1: both protocols", "v1", {"instances": [], "inputs": []}, words="either"),
        BadInput("v1: empty instances", "v1", {"instances": []}, words="non-empty list"),
        BadInput("v1: instances not a list", "v1", {"instances": {"data": good}}, words="non-empty list"),
        BadInput(
            "v1: instance without data", "v1", {"instances": [{"image": good}]}, words="instances[0] must be"
        ),  # fmt: skip
        BadInput(
            "v1: invalid base64",
            "v1",
            {"instances": [{"data": "!!not*base64%%"}]},
            words="instances[0].data is not valid base64",
        ),  # fmt: skip
        BadInput(
            "v1: second instance not an image",
            "v1",
            {"instances": [{"data": good}, {"b64": b64(bytes(range(200)))}]},
            words="instances[1]: ",
        ),
        BadInput(
            "v1: data is a number", "v1", {"instances": [{"data": 42}]}, words="must be a base64 string"
        ),
        BadInput(
            "v1: too many instances",
            "v1",
            {"instances": [{"data": tiny}] * too_many},
            words=f"{too_many} images in one request; the limit is {max_instances}",
        ),  # fmt: skip
        # Open Inference Protocol v2
        BadInput("v2: malformed JSON", "v2", b'{"inputs": [{"name"', JSON, words="malformed JSON"),
        BadInput("v2: no inputs", "v2", {"id": "x"}, words="'instances' (KServe v1) or 'inputs'"),
        BadInput("v2: empty inputs", "v2", {"inputs": []}, words="exactly one tensor"),
        BadInput(
            "v2: two inputs", "v2", {"inputs": v2_body([good])["inputs"] * 2}, words="exactly one tensor"
        ),
        BadInput(
            "v2: wrong datatype",
            "v2",
            v2_body([0.5, 0.5], datatype="FP32", shape=[1, 2]),
            words="datatype 'FP32'",
        ),  # fmt: skip
        BadInput("v2: shape does not match data", "v2", v2_body([good], shape=[3]), words="shape [3]"),
        BadInput(
            "v2: 2-d shape", "v2", v2_body([good, good], shape=[1, 2]), words="expected shape [n] or [n, 1]"
        ),  # fmt: skip
        BadInput("v2: invalid base64", "v2", v2_body(["@@@"]), words="is not valid base64"),
        BadInput("v2: number in BYTES data", "v2", v2_body([7]), words="base64 string"),
        BadInput("v2: base64 of truncated JPEG", "v2", v2_body([b64(truncated)]), words="truncated"),
        BadInput("v2: number id", "v2", {**v2_body([good]), "id": 7}, words="'id' must be a string"),
        BadInput(
            "v2: too many images", "v2", v2_body([tiny] * too_many), words=f"the limit is {max_instances}"
        ),
    ]
