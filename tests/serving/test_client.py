"""serving/client.py: request bodies and the one answer check for the native, KServe v1 and OIP v2 routes."""

from __future__ import annotations

import base64

import pytest

from serving.client import BadAnswer, Endpoint, check_v2, parse_prediction, request_kwargs

PROBS = {"cat": 0.25, "dog": 0.75}


def test_urls():
    assert Endpoint("http://h:1/").url == "http://h:1/predictions/catsdogs"
    assert Endpoint("http://h:1", "native", version="2.0").url == "http://h:1/predictions/catsdogs/2.0"
    assert Endpoint("http://h:1", "v1").url == "http://h:1/v1/models/catsdogs:predict"
    assert Endpoint("http://h:1", "v2").url == "http://h:1/v2/models/catsdogs/infer"
    with pytest.raises(ValueError, match="unknown protocol"):
        Endpoint("http://h:1", "grpc")
    with pytest.raises(ValueError, match="native route only"):
        Endpoint("http://h:1", "v2", version="2.0")


def test_request_bodies_carry_the_image():
    image = b"\x89PNG-bytes"
    assert request_kwargs("native", image)["data"] == image
    v1 = request_kwargs("v1", image)["json"]
    assert base64.b64decode(v1["instances"][0]["data"]) == image
    v2 = request_kwargs("v2", image, request_id="7")["json"]
    (tensor,) = v2["inputs"]
    assert (v2["id"], tensor["datatype"], tensor["shape"]) == ("7", "BYTES", [1])
    assert base64.b64decode(tensor["data"][0]) == image


def test_parse_each_protocol():
    native = {"label": "dog", "probabilities": PROBS, "model_version": "1.0"}
    assert parse_prediction("native", native).probabilities == PROBS
    v1 = parse_prediction("v1", {"predictions": [native]})
    assert (v1.label, v1.model_version) == ("dog", "1.0")
    v2 = {
        "model_name": "catsdogs",
        "model_version": "2.0",
        "id": "1",
        "outputs": [
            {"name": "label", "datatype": "BYTES", "shape": [1], "data": ["dog"]},
            {"name": "probabilities", "datatype": "FP32", "shape": [1, 2], "data": [0.25, 0.75]},
        ],
    }
    assert parse_prediction("v2", v2) == parse_prediction("native", {**native, "model_version": "2.0"})
    v2["outputs"][1]["data"] = [[0.25, 0.75]]  # nested row-major data is valid v2 too
    assert parse_prediction("v2", v2).probabilities == PROBS


@pytest.mark.parametrize(
    ("protocol", "body"),
    [
        ("native", {"label": "cow", "probabilities": PROBS}),
        ("native", {"label": "dog", "probabilities": {"cat": 0.7, "dog": 0.7}}),
        ("native", {"label": "dog", "probabilities": {"cat": float("nan"), "dog": 1.0}}),
        ("native", {"message": "hello"}),
        ("native", ["not", "an", "object"]),
        ("v1", {"predictions": []}),
        ("v1", {"predictions": [{"label": "dog"}]}),
        ("v2", {"outputs": [{"name": "label", "data": ["dog"]}]}),
        ("v2", {"outputs": [{"name": "label", "data": ["dog"]}, {"name": "probabilities", "data": [1.0]}]}),
        ("native", {"label": "cat", "probabilities": PROBS, "model_version": "1.0"}),  # not the argmax
        ("native", {"label": "dog", "probabilities": PROBS, "model_version": "1.0", "pet_probability": 1.5}),
        ("native", {"label": "dog", "probabilities": PROBS, "model_version": "1.0", "pet_probability": "x"}),
        ("native", {"label": "dog", "probabilities": PROBS}),  # no model_version
    ],
)
def test_malformed_answers_raise_bad_answer(protocol, body):
    with pytest.raises(BadAnswer):
        parse_prediction(protocol, body)


def test_verdicts_and_pet_probability_of_the_coming_api_are_accepted():
    """Issue 14: `label` becomes a verdict (cat, dog, unsure, neither) and answers gain pet_probability."""
    for verdict in ("unsure", "neither"):
        answer = {"label": verdict, "probabilities": PROBS, "model_version": "1.0", "pet_probability": 0.1}
        prediction = parse_prediction("native", answer)
        assert (prediction.label, prediction.pet_probability) == (verdict, 0.1)
    v2 = {
        "model_name": "catsdogs",
        "model_version": "1.0",
        "outputs": [
            {"name": "label", "datatype": "BYTES", "shape": [2], "data": ["neither", "dog"]},
            {"name": "probabilities", "datatype": "FP32", "shape": [2, 2], "data": [0.5, 0.5, 0.25, 0.75]},
            {"name": "pet_probability", "datatype": "FP32", "shape": [2], "data": [0.02, 0.99]},
        ],
    }
    assert check_v2(v2, 2) == ["neither", "dog"]
    v2["outputs"][2]["data"] = [0.02, 7.0]
    with pytest.raises(BadAnswer, match="pet_probability"):
        check_v2(v2, 2)
