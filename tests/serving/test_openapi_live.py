"""docs/openapi.yaml fuzzed against a real TorchServe with schemathesis: every answer conforms to the
spec, none is a 5xx, and the server still answers a good image afterwards.

Bounded: at most MAX_EXAMPLES generated requests per operation and mode (valid and invalid bodies),
no shrinking of failures beyond hypothesis' own limits, every request to 127.0.0.1. What the spec
cannot say (random bytes are a valid `image/*` body yet no image) is why `positive_data_acceptance`
is not among the checks: such bodies get a documented 400.
"""

from __future__ import annotations

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from monitoring.faults import worker_pids
from serving.client import check_prediction, post_native
from serving.openapi import SPEC_PATH
from serving.store import MODEL_NAME

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,  # a body the spec forbids must get a 4xx, not an answer
]
schema = schemathesis.openapi.from_path(
    SPEC_PATH,
    config=SchemathesisConfig.from_dict({"generation": {"mode": "all", "max-examples": MAX_EXAMPLES}}),
)


@schema.hook
def filter_body(ctx, body) -> bool:
    """Known TorchServe 0.12 frontend defect, not ours: a multipart part with an empty name gets 500
    ErrorDataDecoderException from Netty before any handler runs (test_known_frontend_defect_...
    below pins it). Everything else is fuzzed."""
    return not (isinstance(body, dict) and "" in body)


@pytest.fixture(scope="module")
def http():
    with requests.Session() as session:
        yield session


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_every_answer_conforms_to_the_spec_and_none_is_a_server_error(case, torchserve, http):
    # The spec's servers are the standard local ports; this server runs on free ones.
    base = torchserve.metrics_url if case.path == "/metrics" else torchserve.inference_url
    assert base.startswith("http://127.0.0.1:")
    case.call_and_validate(base_url=base, session=http, checks=CHECKS, timeout=30)


def test_the_server_still_answers_a_good_image_after_the_fuzzing(torchserve, http, photos):
    # Runs after the fuzzing in file order (pytest keeps it); a worker the fuzzing killed would show here.
    answer = post_native(http, torchserve.inference_url, photos["cat"])
    assert answer.status_code == 200, answer.text
    assert check_prediction(answer.json())["model_version"] == "1.0"


def test_known_frontend_defect_a_multipart_part_without_a_name_is_a_500_and_harms_nothing(
    torchserve, http, photos
):
    """Found by the fuzzing above. If this starts failing, TorchServe answers it properly now: drop the
    filter_body hook and this test."""
    pids = worker_pids(torchserve.management_url)
    answer = http.post(
        f"{torchserve.inference_url}/predictions/{MODEL_NAME}", files={"": ("x", b"{}")}, timeout=30
    )
    assert (answer.status_code, answer.json()["type"]) == (500, "ErrorDataDecoderException")
    assert worker_pids(torchserve.management_url) == pids
    assert post_native(http, torchserve.inference_url, photos["dog"]).status_code == 200
