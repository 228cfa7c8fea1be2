"""All three protocols and bad inputs against a real TorchServe (the session `torchserve` fixture)."""

from __future__ import annotations

import base64
import io
import time

import pytest
import requests
from PIL import Image

from serving.client import check_prediction, check_v1, check_v2, post_native, post_v1, post_v2, v2_request
from serving.store import MODEL_NAME

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def session():
    with requests.Session() as s:
        yield s


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize("content_type", ["image/jpeg", "application/octet-stream"])
def test_native_raw_body(torchserve, session, photos, content_type):
    answer = session.post(
        f"{torchserve.inference_url}/predictions/catsdogs",
        data=photos["cat"],
        headers={"Content-Type": content_type},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert check_prediction(answer.json())["model_version"] == "1.0"


@pytest.mark.parametrize("field", ["data", "file"])
def test_native_multipart(torchserve, session, photos, field):
    answer = session.post(
        f"{torchserve.inference_url}/predictions/catsdogs",
        files={field: ("dog.jpg", photos["dog"], "image/jpeg")},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    check_prediction(answer.json())


def test_native_by_version(torchserve, session, photos):
    answer = post_native(session, torchserve.inference_url, photos["cat"], version="1.0")
    assert answer.status_code == 200 and answer.json()["model_version"] == "1.0"


def test_kserve_v1_several_instances(torchserve, session, photos):
    answer = post_v1(session, torchserve.inference_url, [photos["cat"], photos["dog"], photos["cat"]])
    assert answer.status_code == 200, answer.text
    first, second, third = check_v1(answer.json(), 3)
    assert first == third  # same image, same answer, in request order
    body = {"instances": [{"b64": _b64(photos["dog"])}]}  # KServe's other spelling
    answer = session.post(f"{torchserve.inference_url}/v1/models/catsdogs:predict", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    check_v1(answer.json(), 1)


def test_oip_v2_several_images(torchserve, session, photos):
    answer = post_v2(session, torchserve.inference_url, [photos["cat"], photos["dog"]], request_id="req-42")
    assert answer.status_code == 200, answer.text
    check_v2(answer.json(), 2, request_id="req-42")


def _v2_with(**changes) -> dict:
    body = v2_request([b"placeholder"])
    body["inputs"][0].update(changes)
    return body


def test_every_bad_input_gets_its_status_and_400s_a_message_and_the_server_keeps_answering(
    torchserve, session, photos, live_bad_inputs
):
    """The shared corpus (serving/bad_inputs.py) over HTTP: 400 with the handler's message, or the
    frontend's own 404/413, and a good image still answered after each."""
    wrong = {}
    for case in live_bad_inputs(torchserve, photos["cat"]):
        path, kwargs = case.http(MODEL_NAME)
        answer = session.post(torchserve.inference_url + path, timeout=30, **kwargs)
        if answer.status_code != case.status:
            wrong[case.kind] = (answer.status_code, answer.text[:200])
        elif case.words is not None:
            body = answer.json()
            if not (body["code"] == 400 and case.words in body["error"]):
                wrong[case.kind] = body
    assert not wrong, wrong
    assert post_native(session, torchserve.inference_url, photos["dog"]).status_code == 200


def test_a_real_bomb_gets_400(torchserve, session):
    buffer = io.BytesIO()
    Image.new("L", (8000, 6000)).save(buffer, format="PNG")  # 48 MP > the 40 MP limit; ~50 KB compressed
    bomb = post_native(session, torchserve.inference_url, buffer.getvalue())
    assert bomb.status_code == 400 and "pixels" in bomb.json()["error"], bomb.text


def test_bad_items_on_v1_and_v2_routes_get_400(torchserve, session, photos):
    v1 = session.post(
        f"{torchserve.inference_url}/v1/models/catsdogs:predict",
        timeout=30,
        json={"instances": [{"data": _b64(photos["cat"])}, {"data": _b64(b"junk")}]},
    )
    assert v1.status_code == 400 and "instances[1]" in v1.json()["error"], v1.text
    v2 = session.post(
        f"{torchserve.inference_url}/v2/models/catsdogs/infer", json=_v2_with(datatype="INT8"), timeout=30
    )
    assert v2.status_code == 400 and "BYTES" in v2.json()["error"], v2.text


def test_body_over_the_size_limit_gets_413(torchserve, session):
    limit = int(torchserve.config()["max_request_size"])
    answer = post_native(session, torchserve.inference_url, b"\0" * (limit + 1))
    assert answer.status_code == 413


def test_unknown_model_or_version_gets_404(torchserve, session, photos):
    assert post_native(session, torchserve.inference_url, photos["cat"], model="nosuch").status_code == 404
    assert post_native(session, torchserve.inference_url, photos["cat"], version="9.9").status_code == 404


@pytest.fixture(scope="module")
def batching_server(model_dirs, tmp_path_factory):
    """One worker batching up to 4 requests for up to 500 ms, so concurrent requests share a batch."""
    from serving.package import Batching, build_archive
    from serving.ports import Ports
    from serving.server import ModelSpec, TorchServe

    store = tmp_path_factory.mktemp("batching-store")
    build_archive(
        model_dirs["1.0"], "1.0", store / "catsdogs.mar", batching=Batching(size=4, max_delay_ms=500)
    )
    spec = ModelSpec("catsdogs.mar", workers=1)
    with TorchServe(store, tmp_path_factory.mktemp("batching"), ports=Ports.free(), models=[spec]) as server:
        yield server


def test_batch_with_a_bad_item_answers_each_request_on_its_own(batching_server, photos):
    from concurrent.futures import ThreadPoolExecutor

    url = batching_server.inference_url
    ts_log = batching_server.logs_dir / "ts_log.log"
    batches_before = ts_log.read_text().count("Backend response time")
    bodies = [photos["cat"], b"not an image", photos["dog"], photos["cat"]]
    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(lambda body: post_native(requests.Session(), url, body), bodies))
    # TorchServe logs one "Backend response time" per batch a worker answers: all four shared one.
    # The line can reach the file just after the answers do, so wait for it (and for any other).
    deadline = time.monotonic() + 10
    while ts_log.read_text().count("Backend response time") == batches_before and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    assert ts_log.read_text().count("Backend response time") - batches_before == 1
    assert [a.status_code for a in answers] == [200, 400, 200, 200], [a.text for a in answers]
    assert answers[0].json() == answers[3].json()  # same image, same answer, whatever the batch
    assert "not a recognised image format" in answers[1].json()["error"]
