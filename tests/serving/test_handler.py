"""The handler without a server: every protocol, every bad input, batching, image kinds, the TorchServe
adapter (a real ts Context), its metrics, and the tensor it feeds the model versus training's.

The model is a freshly initialised, seeded CatsDogsNet exported for the default runtime (ONNX Runtime):
the tests check the plumbing, not accuracy.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from ts.context import Context, RequestProcessor
from ts.metrics.metric_cache_yaml_impl import MetricsCacheYamlImpl

from handler.inference import Classifier, ModelSpec
from handler.preprocess import to_model_input
from handler.protocols import RawRequest
from handler.runtime import DEFAULT_RUNTIME
from handler.service import InferenceService
from handler.ts_handler import CatsDogsHandler
from serving.bad_inputs import BadInput, bad_inputs
from serving.package import stage_model
from serving.samples import drawn_jpeg, write_fresh_model

REPO = Path(__file__).resolve().parents[2]
MAX_INSTANCES = 4


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """What TorchServe unpacks a .mar's model into: model.onnx and index_to_name.json."""
    path = tmp_path_factory.mktemp("model")
    stage_model(write_fresh_model(tmp_path_factory.mktemp("trained")), DEFAULT_RUNTIME, path)
    return path


@pytest.fixture(scope="module")
def classifier(model_dir) -> Classifier:
    return Classifier.load(model_dir, ModelSpec(), "1.0")


@pytest.fixture(scope="module")
def service(classifier) -> InferenceService:
    return InferenceService(classifier, "catsdogs", MAX_INSTANCES)


@pytest.fixture(scope="module")
def context(model_dir) -> Context:
    """A real TorchServe Context, with the metrics cache built from the server's metrics config."""
    metrics = MetricsCacheYamlImpl(config_file_path=str(REPO / "serving" / "metrics.yaml"))
    metrics.initialize_cache()
    metrics.model_name = "catsdogs"
    manifest = {
        "model": {"modelName": "catsdogs", "modelVersion": "1.0", "serializedFile": "model.onnx",
                  "handler": "ts_handler.py"}
    }  # fmt: skip
    return Context("catsdogs", str(model_dir), manifest, 4, None, "0.12.0", True, metrics,
                   {"handler": {"max_instances": MAX_INSTANCES}})  # fmt: skip


@pytest.fixture(scope="module")
def handler(context) -> CatsDogsHandler:
    handler = CatsDogsHandler()
    handler.initialize(context)
    return handler


def handle(
    handler: CatsDogsHandler, context: Context, *requests: tuple[dict, str | dict[str, str]]
) -> list[tuple[int, object, str]]:
    """Call handle() the way TorchServe's worker does, each request given as its fields and their
    content type (one for all, or per field); -> [(status, parsed JSON, content type)]."""
    data, processors = [], []
    for fields, content_type in requests:
        types = content_type if isinstance(content_type, dict) else dict.fromkeys(fields, content_type)
        headers = {name: {"content-type": types[name]} for name in fields}
        headers.update({"Content-Type": next(iter(types.values())), "explain": "False"})
        data.append(fields)
        processors.append(RequestProcessor(headers))
    context.request_processor = processors
    context.request_ids = {i: f"request-{i}" for i in range(len(requests))}
    context.metrics.request_ids = context.request_ids
    bodies = handler.handle(data, context)
    assert len(bodies) == len(requests)
    return [
        (context.get_response_status(i)[0], json.loads(body), context.get_response_content_type(i))
        for i, body in enumerate(bodies)
    ]


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def v2_body(images: list[bytes], shape=None, datatype="BYTES", **extra) -> dict:
    data = [b64(i) for i in images]
    tensor = {"name": "image", "shape": shape or [len(data)], "datatype": datatype, "data": data}
    return {"inputs": [tensor], **extra}


def assert_prediction(answer: dict) -> None:
    assert answer["label"] in ("cat", "dog")
    probabilities = answer["probabilities"]
    assert list(probabilities) == ["cat", "dog"]
    assert all(np.isfinite(p) and 0 <= p <= 1 for p in probabilities.values())
    assert sum(probabilities.values()) == pytest.approx(1.0, abs=2e-6)
    assert answer["label"] == max(probabilities, key=probabilities.get)  # thresholds 0: never unsure/neither
    assert answer["pet_probability"] == 1.0  # CatsDogsNet has no ImageNet head to doubt it
    assert answer["model_version"] == "1.0"


# ---------------------------------------------------------------- protocols through the core


@pytest.mark.parametrize(
    "field, content_type",
    [
        ("body", "image/jpeg"),
        ("body", "application/octet-stream"),
        ("data", "image/jpeg"),
        ("file", "image/jpeg"),
    ],
)
def test_native_image_in_body_or_multipart_field(service, photos, field, content_type):
    [answer] = service.answer([RawRequest({field: bytearray(photos["cat"])}, {field: content_type})])
    assert answer.status == 200
    assert_prediction(answer.body)


def test_kserve_v1_answers_one_prediction_per_instance_for_data_and_b64(service, photos):
    native = service.answer([RawRequest({"body": photos["dog"]})])[0].body
    body = {"instances": [{"data": b64(photos["cat"])}, {"b64": b64(photos["dog"])}]}
    [answer] = service.answer([RawRequest({"body": body}, {"body": "application/json"})])
    assert answer.status == 200
    cat, dog = answer.body["predictions"]
    assert_prediction(cat)
    assert dog == native  # the same image gives the same answer whatever the protocol


def test_oip_v2_answers_typed_outputs_and_echoes_id(service, classifier, photos):
    images = [photos["cat"], photos["dog"], photos["cat"]]
    [answer] = service.answer([RawRequest({"body": v2_body(images, id="req-42")})])
    assert answer.status == 200
    body = answer.body
    assert (body["model_name"], body["model_version"], body["id"]) == ("catsdogs", "1.0", "req-42")
    label, probabilities, pet = body["outputs"]
    assert label == {"name": "label", "datatype": "BYTES", "shape": [3], "data": label["data"]}
    assert pet == {"name": "pet_probability", "datatype": "FP32", "shape": [3], "data": [1.0, 1.0, 1.0]}
    assert probabilities["name"] == "probabilities" and probabilities["datatype"] == "FP32"
    assert probabilities["shape"] == [3, 2] and len(probabilities["data"]) == 6
    expected = classifier.predict(np.stack([classifier.decode(i) for i in images]))
    assert label["data"] == [p.label for p in expected]
    assert probabilities["data"] == [v for p in expected for v in p.probabilities.values()]


def test_oip_v2_accepts_nested_n_by_1_data_and_omits_absent_id(service, photos):
    body = v2_body([photos["cat"], photos["dog"]], shape=[2, 1])
    body["inputs"][0]["data"] = [[d] for d in body["inputs"][0]["data"]]
    [answer] = service.answer([RawRequest({"body": body})])
    assert answer.status == 200 and "id" not in answer.body
    assert answer.body["outputs"][0]["shape"] == [2]


def test_malformed_json_forwarded_as_bytes_is_parsed_when_valid(service, photos):
    """With TS_DECODE_INPUT_REQUEST=false TorchServe forwards JSON undecoded: it must still work."""
    raw = json.dumps({"instances": [{"data": b64(photos["cat"])}]}).encode()
    [answer] = service.answer([RawRequest({"body": bytearray(raw)}, {"body": "application/json"})])
    assert answer.status == 200 and len(answer.body["predictions"]) == 1


# ---------------------------------------------------------------- bad input: 400 + a message naming it

def handler_cases() -> list[BadInput]:
    """The shared corpus's cases that reach the handler (the frontend answers the others itself)."""
    return [case for case in bad_inputs(drawn_jpeg(0), MAX_INSTANCES) if case.words is not None]


@pytest.mark.parametrize("case", handler_cases(), ids=lambda case: case.kind)
def test_bad_input_gets_400_json_naming_the_problem(handler, context, case):
    [(status, body, response_type)] = handle(handler, context, case.worker_fields())
    assert status == 400
    assert response_type == "application/json"
    assert body["code"] == 400 and body["type"] == "InvalidInput"
    assert case.words in body["error"]


def test_pixel_limit_is_configurable(model_dir, photos):
    """A limit from the model config: a 64 x 64 picture passes, one over 1,000 pixels does not."""
    small = Classifier.load(model_dir, ModelSpec(), "1.0", max_pixels=1000)
    service = InferenceService(small, "catsdogs", MAX_INSTANCES)
    tiny, large = encode(Image.new("RGB", (20, 20)), "PNG"), encode(Image.new("RGB", (64, 64)), "PNG")
    answers = service.answer([RawRequest({"body": tiny}), RawRequest({"body": large})])
    assert [a.status for a in answers] == [200, 400]
    assert "the limit is 1000" in answers[1].body["error"]


# ---------------------------------------------------------------- batching


def test_batch_with_a_bad_request_fails_only_that_request(handler, context, service, photos):
    v1 = {"instances": [{"data": b64(photos["dog"])}, {"data": b64(photos["cat"])}]}
    answers = handle(
        handler, context,
        ({"body": bytearray(photos["cat"])}, "image/jpeg"),
        ({"body": bytearray(b"not an image")}, "image/jpeg"),
        ({"body": v1}, "application/json"),
        ({"data": bytearray(photos["dog"])}, "image/jpeg"),
    )  # fmt: skip
    assert [status for status, _, _ in answers] == [200, 400, 200, 200]
    alone = {name: service.answer([RawRequest({"body": photos[name]})])[0].body for name in ("cat", "dog")}
    # One forward pass for the batch gives the answers each image gets alone (up to float rounding).
    (_, first, _), _, (_, v1_answer, _), (_, last, _) = answers
    pairs = [
        (first, "cat"),
        (v1_answer["predictions"][0], "dog"),
        (v1_answer["predictions"][1], "cat"),
        (last, "dog"),
    ]
    for got, name in pairs:
        want = alone[name]
        assert got["label"] == want["label"]
        assert got["probabilities"]["dog"] == pytest.approx(want["probabilities"]["dog"], abs=1e-5)


def test_model_failure_is_a_500_json_for_good_requests_and_400_stays(tmp_path, photos):
    """A model whose weights turned NaN: good requests get InferenceError 500, bad ones still their 400."""
    trained = write_fresh_model(tmp_path / "trained")
    state = torch.load(trained / "model.pt", weights_only=True)
    state["head.3.bias"] = torch.full_like(state["head.3.bias"], float("nan"))
    torch.save(state, trained / "model.pt")
    stage_model(trained, DEFAULT_RUNTIME, tmp_path / "unpacked")
    with pytest.raises(Exception, match="non-finite"):  # the load-time check already refuses it
        Classifier.load(tmp_path / "unpacked", ModelSpec(), "1.0")
    from handler.runtime import load_runtime
    from handler.verdict import Thresholds

    broken = Classifier(load_runtime(DEFAULT_RUNTIME, tmp_path / "unpacked"), ("cat", "dog"), "1.0", Thresholds())
    service = InferenceService(broken, "catsdogs", MAX_INSTANCES)
    good, bad = service.answer([RawRequest({"body": photos["cat"]}), RawRequest({"body": b"junk"})])
    assert (good.status, good.body["type"]) == (500, "InferenceError")
    assert "non-finite" in good.body["error"]
    assert bad.status == 400


# ---------------------------------------------------------------- image kinds


def image_kinds() -> dict[str, bytes]:
    rng = np.random.default_rng(1)
    rgb = Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees on display
    frames = [Image.new("P", (32, 32), i) for i in (10, 200)]
    animated = io.BytesIO()
    frames[0].save(animated, format="GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    return {
        "grayscale": encode(rgb.convert("L"), "JPEG"),
        "rgba": encode(rgb.convert("RGBA"), "PNG"),
        "cmyk": encode(rgb.convert("CMYK"), "JPEG"),
        "palette": encode(rgb.convert("P"), "GIF"),
        "16-bit": encode(Image.fromarray(rng.integers(0, 65536, (32, 32), dtype=np.uint16)), "PNG"),
        "animated gif": animated.getvalue(),
        "webp": encode(rgb, "WEBP"),
        "exif rotated": encode(rgb, "JPEG", exif=exif.tobytes()),
    }


@pytest.mark.parametrize("kind", list(image_kinds()))
def test_image_kinds_are_accepted_through_the_handler(handler, context, kind):
    [(status, body, _)] = handle(
        handler, context, ({"body": bytearray(image_kinds()[kind])}, "application/octet-stream")
    )
    assert status == 200, body
    assert_prediction(body)


# ---------------------------------------------------------------- adapter specifics


def test_adapter_reads_version_and_settings_from_the_archive(handler):
    assert handler.service.classifier.version == "1.0"
    assert handler.service.max_instances == MAX_INSTANCES  # from the model config's handler section
    assert handler.service.classifier.runtime.name == DEFAULT_RUNTIME  # the default ModelSpec


def test_unknown_handler_setting_fails_initialisation(context):
    context.model_yaml_config = {"handler": {"max_pixel": 5}}
    try:
        with pytest.raises(ValueError, match="unknown handler setting"):
            CatsDogsHandler().initialize(context)
    finally:
        context.model_yaml_config = {"handler": {"max_instances": MAX_INSTANCES}}


def test_handler_metrics_are_emitted_as_declared(handler, context, photos, caplog):
    with caplog.at_level(logging.INFO, logger="ts.metrics"):
        [(_, answer, _)] = handle(handler, context, ({"body": bytearray(photos["cat"])}, "image/jpeg"))
    label = answer["label"]
    lines = [r.getMessage() for r in caplog.records if "[METRICS]" in r.getMessage()]
    assert not [line for line in lines if "Failed" in line], lines
    # "[METRICS]<name>.<unit>:<value>|#<dimensions>|#type:<TYPE>|..." (TorchServe renames units).
    parsed = [
        re.match(r"\[METRICS\](\w+)\.\w+:([\d.]+)\|#([^|]*)\|#type:(\w+)", line).groups() for line in lines
    ]
    by_name = {name: (float(value), dims, kind) for name, value, dims, kind in parsed}
    assert set(by_name) == {
        "PredictionsPerLabel",
        "PredictionConfidence",
        "PreprocessTimeMs",
        "HandlerLatencySeconds",
    }
    assert by_name["PredictionsPerLabel"] == (1.0, f"ModelName:catsdogs,Level:Model,Label:{label}", "COUNTER")
    confidence, dims, kind = by_name["PredictionConfidence"]
    assert (
        confidence == answer["probabilities"][label]
        and dims.endswith(f"Label:{label}")
        and kind == "HISTOGRAM"
    )
    assert by_name["PreprocessTimeMs"][0] > 0 and by_name["PreprocessTimeMs"][2] == "HISTOGRAM"
    # The whole batch took longer than its preprocessing (ms vs s).
    latency, _, kind = by_name["HandlerLatencySeconds"]
    assert kind == "HISTOGRAM" and by_name["PreprocessTimeMs"][0] / 1000 < latency < 10


# ---------------------------------------------------------------- one preprocessing for training and serving


@pytest.fixture(params=["generated", pytest.param("real", marks=pytest.mark.shared_data)])
def photo_file(request, tmp_path, photos) -> Path:
    if request.param == "generated":
        path = tmp_path / "generated.jpg"
        path.write_bytes(photos["dog"])
        return path
    real_data = request.getfixturevalue("real_data")
    return min((real_data / "train" / "dogs").glob("*.jpg"))


def test_handler_tensor_equals_training_evaluation_tensor(service, classifier, photo_file, tmp_path):
    from training.augment import eval_batches
    from training.data import SourceFile, decode_file
    from training.evaluate import load_test
    from training.prepare import write_split

    # Training: prepare decodes and stores the array, evaluation reads it back and builds the batch.
    decoded = decode_file(SourceFile(photo_file, photo_file.name, 1))
    write_split(tmp_path / "test.npz", decoded.image[None], [0], [1], [photo_file.name])
    images, _, _ = load_test(tmp_path)
    training_tensor = next(eval_batches(images, batch_size=1))

    # Serving: capture exactly what the runtime receives for the same file's bytes. The exported graph
    # starts with to_model_input itself (test_model.py checks the graph against it).
    seen, run = [], classifier.runtime.run
    classifier.runtime.run = lambda batch: (seen.append(batch.copy()), run(batch))[1]
    try:
        [answer] = service.answer([RawRequest({"body": photo_file.read_bytes()}, {"body": "image/jpeg"})])
    finally:
        del classifier.runtime.run
    assert answer.status == 200
    assert np.array_equal(seen[0], images)
    assert torch.equal(to_model_input(seen[0]), training_tensor)


# ---------------------------------------------------------------- the four answers


@pytest.fixture(scope="module")
def pretrained_dir(tmp_path_factory) -> Path:
    """The ImageNet backbone (its pet probability is a real score) with a seeded head, exported."""
    path = tmp_path_factory.mktemp("pretrained")
    stage_model(write_fresh_model(tmp_path_factory.mktemp("fresh"), arch="efficientnet_lite0"), DEFAULT_RUNTIME, path)
    return path


@pytest.mark.parametrize(
    "thresholds, expected",
    [({"unsure_below": 1.0}, "unsure"), ({"neither_below": 1.0, "unsure_below": 1.0}, "neither")],
)
def test_every_protocol_carries_unsure_and_neither_and_keeps_the_probabilities(pretrained_dir, photos,
                                                                              thresholds, expected):
    """A client reading only `label` is never told cat or dog when the answer is unsure or neither."""
    from handler.verdict import Thresholds

    strict = Classifier.load(pretrained_dir, ModelSpec(thresholds=Thresholds(**thresholds)), "1.0")
    service = InferenceService(strict, "catsdogs", MAX_INSTANCES)
    native, v1, v2 = service.answer([
        RawRequest({"body": photos["cat"]}, {"body": "image/jpeg"}),
        RawRequest({"body": {"instances": [{"data": b64(photos["dog"])}]}}, {"body": "application/json"}),
        RawRequest({"body": {"inputs": [{"name": "i", "shape": [1], "datatype": "BYTES",
                                         "data": [b64(photos["cat"])]}]}}, {"body": "application/json"}),
    ])  # fmt: skip
    assert native.body["label"] == expected and set(native.body["probabilities"]) == {"cat", "dog"}
    assert v1.body["predictions"][0]["label"] == expected
    outputs = {o["name"]: o for o in v2.body["outputs"]}
    assert outputs["label"]["data"] == [expected]
    pet = outputs["pet_probability"]
    assert (pet["datatype"], pet["shape"]) == ("FP32", [1]) and 0 < pet["data"][0] < 1
    assert 0 < native.body["pet_probability"] < 1
