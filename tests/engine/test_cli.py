"""segassist-predict and segassist-export."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from PIL import Image

import engine
import engine.cli.export as export_cli
from engine.cli.predict import output_names

ROOT = Path(__file__).resolve().parents[2]


def test_predict_on_a_folder_with_a_corrupt_image_skips_it_and_fails_at_the_end(tiny_model_file, tmp_path):
    model_file = tiny_model_file
    images = tmp_path / "bilder"
    images.mkdir()
    rng = np.random.default_rng(0)
    engine.write_image(images / "a.png", rng.integers(0, 256, (70, 90, 3), dtype=np.uint8))
    engine.write_image(images / "b.jpg", rng.integers(0, 256, (40, 50, 3), dtype=np.uint8))
    (images / "c.png").write_bytes(b"not an image at all")
    (images / "notes.txt").write_text("not looked at")
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "engine.cli.predict", str(model_file), str(images), "--out", str(out),
         "--tile", "64", "--save-confidence", "--precision", "fp32"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 1, result.stderr
    assert "c.png" in result.stderr and "a.png" not in result.stderr.split("skipped")[1].split("\n")[0]
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "a_confidence.png", "b.png", "b_confidence.png"]
    with Image.open(out / "a.png") as im:
        assert im.mode == "P" and im.size == (90, 70)
        assert im.getpalette()[6:9] == [10, 20, 30], "the model's colour of class 2"
        labels = np.asarray(im)
    assert labels.max() < 5
    with Image.open(out / "b_confidence.png") as im:
        assert im.mode == "L" and im.size == (50, 40)
    summary = result.stdout
    assert "images     3" in summary and "predicted  2" in summary and "failed     1" in summary
    assert "cpu / fp32 / torch" in summary
    want = engine.Predictor(model_file, precision="fp32", tile=64).predict(images / "a.png").labels
    np.testing.assert_array_equal(labels, want)


def test_output_names_stay_apart_when_stems_repeat():
    paths = [Path("x/a.png"), Path("x/a.jpg"), Path("y/a.png"), Path("x/b.tif")]
    assert output_names(paths) == ["a_png", "a_jpg", "a_png-2", "b"]


def test_export_writes_a_checked_onnx_file_with_the_metadata(tiny_exported):
    assert tiny_exported.exit_code == 0, tiny_exported.printed
    error = float(tiny_exported.printed.split("relative error ")[1].split()[0])
    assert error < 1e-3
    props = {p.key: p.value for p in onnx.load(str(tiny_exported.onnx_file)).metadata_props}
    assert json.loads(props["segassist"])["classes"][2]["name"] == "car"
    folder = tiny_exported.onnx_file.parent
    assert sorted(p.name for p in folder.iterdir()) == ["m.onnx", "m.safetensors"], "no temporary left"


def test_export_fails_and_writes_nothing_when_onnxruntime_disagrees(tiny_model_file, tmp_path, monkeypatch,
                                                                   capsys):
    model_file = tiny_model_file
    monkeypatch.setattr(export_cli, "export_onnx", lambda model, path: Path(path).write_bytes(b"an onnx file"))
    monkeypatch.setattr(export_cli, "onnx_relative_error", lambda *args, **kwargs: 0.5)
    out = tmp_path / "m.onnx"
    assert export_cli.main([str(model_file), "--onnx", str(out)]) == 1
    assert "disagrees with torch" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_export_of_a_bad_model_file_names_it(tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    assert export_cli.main([str(bad), "--onnx", str(tmp_path / "x.onnx")]) == 2
    assert "bad.safetensors" in capsys.readouterr().err
