"""serving/package.py: the archive's contents and version, side-by-side versions, clear errors, and
that TorchServe's own loader can initialise the handler from the unpacked archive alone."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from handler.verdict import Thresholds
from serving.package import Batching, PackageError, build_archive, main
from serving.store import archive_batching, read_manifest, read_model_config, versions_in_store
from training.model import Calibration, write_fresh

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    calibration = Calibration(0.8, Thresholds(unsure_below=0.7, neither_below=0.0))
    return write_fresh(tmp_path_factory.mktemp("models"), "catsdogsnet", 0, calibration)


@pytest.fixture(scope="module")
def archive(model_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("store") / "catsdogs.mar"
    return build_archive(model_dir, "1.0", out, {"max_instances": 8})


def test_archive_holds_the_export_handler_package_labels_and_config(archive, model_dir):
    with zipfile.ZipFile(archive) as mar:
        names = set(mar.namelist())
        manifest = json.loads(mar.read("MAR-INF/MANIFEST.json"))["model"]
        config = yaml.safe_load(mar.read("model-config.yaml"))
    assert manifest == {
        "modelName": "catsdogs", "modelVersion": "1.0", "serializedFile": "model.onnx",
        "handler": "ts_handler.py", "configFile": "model-config.yaml",
    }  # fmt: skip
    handler_modules = {f"handler/{p.name}" for p in (REPO / "handler").glob("*.py")}
    assert {"model.onnx", "ts_handler.py", "index_to_name.json", "handler/preprocess.py"} <= names
    assert handler_modules <= names
    # The archive carries no training code, weights file or checkpoint: the export is the model.
    assert not [n for n in names if n.startswith("training/") or n.endswith((".pt", ".pth", ".py")) and
                not (n == "ts_handler.py" or n.startswith("handler/"))]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert config == {
        "handler": {"max_instances": 8}, "batchSize": 4, "maxBatchDelay": 1, "batching": {"size": 4, "max_delay_ms": 0},
        "model": {"runtime": "onnxruntime", "precision": "f32",
                  "thresholds": {"unsure_below": 0.7, "neither_below": 0.0}},
        "source": {"weights_sha256": hashlib.sha256((model_dir / "model.pt").read_bytes()).hexdigest()},
    }  # fmt: skip
    assert read_model_config(archive) == config


@pytest.mark.parametrize("runtime, exported", [("torch", "model.ts"), ("openvino", "model.onnx")])
def test_each_runtime_gets_its_export(model_dir, tmp_path, runtime, exported):
    out = build_archive(model_dir, "1.0", tmp_path / "catsdogs.mar", runtime=runtime)
    with zipfile.ZipFile(out) as mar:
        assert json.loads(mar.read("MAR-INF/MANIFEST.json"))["model"]["serializedFile"] == exported
    assert read_model_config(out)["model"]["runtime"] == runtime


def test_bf16_is_refused_for_runtimes_without_it(model_dir, tmp_path):
    with pytest.raises(PackageError, match="precision bf16 needs the openvino runtime, not torch"):
        build_archive(model_dir, "1.0", tmp_path / "catsdogs.mar", runtime="torch", precision="bf16")


def test_two_versions_coexist_under_distinct_names(model_dir, archive):
    second = build_archive(model_dir, "2.0", archive.parent / "catsdogs-2.0.mar")
    assert read_manifest(archive) == ("catsdogs", "1.0")
    assert read_manifest(second) == ("catsdogs", "2.0")
    assert versions_in_store(archive.parent) == {"1.0": "catsdogs.mar", "2.0": "catsdogs-2.0.mar"}
    assert [p.name for p in archive.parent.iterdir() if p.name.startswith(".")] == []  # no leftovers


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(PackageError, match=r"model.json not found: train a model first"):
        build_archive(tmp_path, "1.0", tmp_path / "catsdogs.mar")
    assert not (tmp_path / "catsdogs.mar").exists()


def test_weights_that_do_not_fit_the_arch_are_refused(tmp_path, model_dir):
    from training.catsdogsnet import CatsDogsNet

    for name in ("model.json", "index_to_name.json"):
        (tmp_path / name).write_text((model_dir / name).read_text())
    torch.save(CatsDogsNet(width=8).state_dict(), tmp_path / "model.pt")
    with pytest.raises(PackageError, match=r"does not fit catsdogsnet: \d+ problem\(s\), first: size mismatch"):
        build_archive(tmp_path, "1.0", tmp_path / "catsdogs.mar")


@pytest.mark.parametrize(
    "version, settings, message",
    [("1.0/../x", None, "must be letters, digits"), ("1.0", {"max_pixel": 1}, "unknown handler setting")],
)
def test_bad_version_or_setting_is_refused(model_dir, tmp_path, version, settings, message):
    with pytest.raises(PackageError, match=message):
        build_archive(model_dir, version, tmp_path / "catsdogs.mar", settings)


def test_cli_reads_version_from_params_and_reports_errors(model_dir, tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text('package:\n  version: "3.1"\n')
    assert (
        main(["--model-dir", str(model_dir), "--params", str(params), "--out", str(tmp_path / "a.mar")]) == 0
    )
    assert read_manifest(tmp_path / "a.mar") == ("catsdogs", "3.1")

    params.write_text("package:\n  version: 1.10\n")  # YAML reads 1.10 as the float 1.1
    assert (
        main(["--model-dir", str(model_dir), "--params", str(params), "--out", str(tmp_path / "b.mar")]) == 1
    )
    assert "must be a quoted string" in capsys.readouterr().err
    assert (
        main(["--model-dir", str(tmp_path / "nowhere"), "--version", "1.0", "--out", str(tmp_path / "c.mar")])
        == 1
    )
    assert "not found: train a model first" in capsys.readouterr().err


def test_cli_takes_batching_from_params_and_refuses_bad_values(model_dir, tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text('package:\n  version: "1.0"\n  batching: {size: 8, max_delay_ms: 3}\n')
    out = tmp_path / "a.mar"
    assert main(["--model-dir", str(model_dir), "--params", str(params), "--out", str(out)]) == 0
    assert read_model_config(out)["batchSize"] == 8 and read_model_config(out)["maxBatchDelay"] == 3
    assert archive_batching(out) == (8, 3)
    assert "batches of up to 8, waiting up to 3 ms" in capsys.readouterr().out
    for bad, message in [
        ("{max_delay_ms: -1}", "max_delay_ms must be a whole number >= 0, got -1"),
        ("{size: 2.5}", "size must be a whole number >= 1, got 2.5"),
        ("{sise: 4}", "unknown package.batching keys ['sise']"),
        ("4", "package.batching must be a mapping"),
    ]:
        params.write_text(f'package:\n  version: "1.0"\n  batching: {bad}\n')
        assert main(["--model-dir", str(model_dir), "--params", str(params), "--out", str(out)]) == 1
        assert message in capsys.readouterr().err
    assert Batching.from_params(None) == Batching()
    with pytest.raises(PackageError, match="size must be a whole number >= 1, got 0"):
        Batching(size=0)  # the dataclass itself refuses, not only the params reader


def test_a_delay_of_0_stays_exact_for_our_loaders_and_safe_for_torchserve_s_own(model_dir, tmp_path):
    """TorchServe reads an archive's maxBatchDelay of 0 as 100 ms: the archive says 1 ms in TorchServe's
    key and 0 in its own section, which archive_batching (every loader of this project) reads."""
    out = build_archive(model_dir, "1.0", tmp_path / "a.mar", batching=Batching(size=4, max_delay_ms=0))
    assert read_model_config(out)["maxBatchDelay"] == 1
    assert archive_batching(out) == (4, 0)
    plain = tmp_path / "plain.mar"  # an archive built elsewhere: TorchServe's keys, else its defaults
    for config, expected in [({"batchSize": 2, "maxBatchDelay": 5}, (2, 5)), ({}, (1, 100))]:
        with zipfile.ZipFile(out) as source, zipfile.ZipFile(plain, "w") as target:
            for item in source.infolist():
                data = yaml.safe_dump(config) if item.filename == "model-config.yaml" else source.read(item)
                target.writestr(item, data)
        assert archive_batching(plain) == expected


LOADER = textwrap.dedent(
    """
    import json, sys
    from ts.context import RequestProcessor
    from ts.model_loader import TsModelLoader

    model_dir, image_path = sys.argv[1], sys.argv[2]
    service = TsModelLoader().load("catsdogs", model_dir, "ts_handler.py", None, 2)
    context = service.context
    context.request_processor = [RequestProcessor({"body": {"content-type": "image/png"}})]
    context.request_ids = {0: "request-0"}
    [body] = service._entry_point([{"body": bytearray(open(image_path, "rb").read())}], context)
    import handler.inference
    print(json.dumps({"module": handler.inference.__file__, "status": context.get_response_status(0)[0],
                      "answer": json.loads(body)}))
    """
)


def test_torchserve_loader_initialises_the_handler_from_the_unpacked_archive_alone(archive, tmp_path):
    """Unpacked as TorchServe does, with only the model dir on sys.path (not the repo): imports resolve."""
    model_dir = tmp_path / "unpacked"
    with zipfile.ZipFile(archive) as mar:
        mar.extractall(model_dir)
    image = tmp_path / "cat.png"
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 120, 40)).save(buffer, format="PNG")
    image.write_bytes(buffer.getvalue())
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(model_dir)}
    result = subprocess.run(
        [sys.executable, "-c", LOADER, str(model_dir), str(image)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(report["module"]).resolve().parent == (model_dir / "handler").resolve()
    assert report["status"] == 200
    assert report["answer"]["model_version"] == "1.0"
    assert set(report["answer"]["probabilities"]) == {"cat", "dog"}
    assert report["answer"]["label"] in {"cat", "dog", "unsure"} and 0 < report["answer"]["pet_probability"] <= 1
