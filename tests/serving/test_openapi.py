"""docs/openapi.yaml: a valid OpenAPI 3.1 document, in step with the code (ports, model name, labels,
limits, the client's answer check), with examples that satisfy their own schemas, and renderings that
are up to date. The live side (schemathesis against a real TorchServe) is test_openapi_live.py."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from handler.inference import Prediction
from handler.preprocess import CLASS_NAMES
from handler.settings import Settings
from serving import client, openapi
from serving.ports import Ports
from serving.store import MODEL_NAME


@pytest.fixture(scope="module")
def spec() -> dict:
    return openapi.load_spec()


def schema_validator(spec: dict, name: str) -> Draft202012Validator:
    """A JSON Schema 2020-12 validator of components/schemas/<name>, its $refs resolved in the spec."""
    registry = Registry().with_resource("urn:spec", DRAFT202012.create_resource(spec))
    return Draft202012Validator({"$ref": f"urn:spec#/components/schemas/{name}"}, registry=registry)


def test_the_spec_is_valid_openapi_3_1(spec):
    assert spec["openapi"].startswith("3.1")
    validate(spec)  # raises with the first problem


def test_servers_use_the_ports_of_serving_ports(spec):
    (server,) = spec["servers"]
    assert urlsplit(server["url"]).port == Ports().inference
    (metrics,) = spec["paths"]["/metrics"]["get"]["servers"]
    assert urlsplit(metrics["url"]).port == Ports().metrics


def test_routes_name_the_model_of_serving_store(spec):
    inference = [path for path in spec["paths"] if path not in ("/ping", "/metrics")]
    assert inference == [
        f"/predictions/{MODEL_NAME}",
        f"/predictions/{MODEL_NAME}/{{version}}",
        f"/v1/models/{MODEL_NAME}:predict",
        f"/v2/models/{MODEL_NAME}/infer",
    ]
    assert spec["components"]["schemas"]["V2Response"]["properties"]["model_name"]["const"] == MODEL_NAME


def test_labels_limits_and_fields_agree_with_the_code(spec):
    schemas = spec["components"]["schemas"]
    assert tuple(schemas["Verdict"]["enum"]) == client.VERDICTS
    assert tuple(schemas["Probabilities"]["required"]) == CLASS_NAMES
    prediction = schemas["Prediction"]
    assert set(prediction["required"]) == set(Prediction("cat", {}, 1.0).to_json("1.0")), "the handler's fields"
    limit = Settings().max_instances
    assert schemas["V1Request"]["properties"]["instances"]["maxItems"] == limit
    assert schemas["V2Request"]["properties"]["inputs"]["items"]["properties"]["data"]["maxItems"] == limit
    outputs = [
        item["$ref"].rsplit("/", 1)[-1]
        for item in schemas["V2Response"]["properties"]["outputs"]["items"]["oneOf"]
    ]
    assert outputs == ["LabelOutput", "ProbabilitiesOutput", "PetProbabilityOutput"]
    assert schemas["V2Response"]["properties"]["outputs"]["minItems"] == 3


def _examples(spec: dict):
    """(operation, status, schema name, example) of every JSON response example."""
    for method, path, operation in openapi.operations(spec):
        for status, response in operation["responses"].items():
            response = openapi._resolve(spec, response)
            for media, content in response.get("content", {}).items():
                if "json" in media and "example" in content:
                    yield (
                        f"{method} {path}",
                        status,
                        content["schema"]["$ref"].rsplit("/", 1)[-1],
                        content["example"],
                    )


def test_every_example_satisfies_its_schema_and_the_client_check(spec):
    examples = list(_examples(spec))
    assert len(examples) >= 10
    for where, status, name, example in examples:
        errors = [e.message for e in schema_validator(spec, name).iter_errors(example)]
        assert not errors, (where, status, errors)
    by_schema = {name: example for _, status, name, example in examples if status == "200"}
    client.check_prediction(by_schema["Prediction"])
    client.check_v1(by_schema["V1Response"], 2)
    assert client.check_v2(by_schema["V2Response"], 2) == ["cat", "neither"]


@pytest.mark.parametrize(
    ("name", "answer"),
    [
        (
            "Prediction",
            {
                "label": "unsure",
                "probabilities": {"cat": 0.5, "dog": 0.5},
                "model_version": "2.0",
                "pet_probability": 0.93,
            },
        ),  # fmt: skip
        (
            "V2Response",
            {
                "model_name": MODEL_NAME,
                "model_version": "2.0",
                "outputs": [
                    {"name": "label", "datatype": "BYTES", "shape": [1], "data": ["neither"]},
                    {"name": "probabilities", "datatype": "FP32", "shape": [1, 2], "data": [0.3, 0.7]},
                    {"name": "pet_probability", "datatype": "FP32", "shape": [1], "data": [0.01]},
                ],
            },
        ),  # fmt: skip
    ],
)
def test_the_coming_api_answers_conform_already(spec, name, answer):
    """Issue 14's verdicts and pet_probability: the spec accepts them, so it need not change with them."""
    assert not list(schema_validator(spec, name).iter_errors(answer))


@pytest.mark.parametrize(
    ("name", "answer"),
    [
        ("Prediction", {"label": "cow", "probabilities": {"cat": 0.5, "dog": 0.5}, "model_version": "1"}),
        ("Prediction", {"label": "cat", "probabilities": {"cat": 1.5, "dog": 0.5}, "model_version": "1"}),
        ("Prediction", {"label": "cat", "probabilities": {"cat": 0.5}, "model_version": "1"}),
        ("Prediction", {"label": "cat", "probabilities": {"cat": 0.5, "dog": 0.5}}),
        (
            "Prediction",
            {
                "label": "cat",
                "probabilities": {"cat": 0.5, "dog": 0.5},
                "model_version": "1",
                "pet_probability": -0.1,
            },
        ),  # fmt: skip
        ("V2Response", {"model_name": "other", "model_version": "1", "outputs": []}),
        ("Error", {"code": 400, "type": "InvalidInput"}),
    ],
)
def test_the_schemas_reject_what_the_client_rejects(spec, name, answer):
    assert list(schema_validator(spec, name).iter_errors(answer))


def test_the_rendered_reference_and_the_readme_table_are_up_to_date():
    assert openapi.main(["--check"]) == 0, "run `make api-docs` and commit docs/api.md and README.md"


def test_the_readme_links_the_rendered_reference(repo_root):
    readme = (repo_root / "README.md").read_text()
    assert "(docs/api.md)" in readme and "(docs/openapi.yaml)" in readme
