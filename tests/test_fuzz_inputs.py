"""Generated bad inputs (deterministic, made at test time): images, label PNGs, project files, model
files and checkpoints. Each either loads or gives the documented error naming the file; none crashes or
is accepted as garbage, and none hangs (the per-test timeout; `python -m bench.limits` times the slowest)."""

import io
import json
import pickle
import struct

import numpy as np
import pytest
import torch

import engine
from app.core.storage.project import Project, ProjectFileError
from engine.images import ImageReadError, read_image, read_label, write_image, write_label
from engine.mmseg_import import MMSegImportError
from engine.model_file import ModelFileError
from tests.engine.tiny import tiny_model

SEED = 11


def mutations(data: bytes, rng, n: int):
    """Truncations, bit flips, spliced garbage and overwritten header fields of `data`."""
    for i in range(n):
        b = bytearray(data)
        kind = i % 4
        if kind == 0:
            b = b[: int(rng.integers(0, len(b)))]
        elif kind == 1:
            for _ in range(int(rng.integers(1, 8))):
                b[int(rng.integers(0, len(b)))] ^= 1 << int(rng.integers(0, 8))
        elif kind == 2:
            at = int(rng.integers(0, len(b)))
            b[at:at] = rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
        else:
            at = int(rng.integers(8, min(len(b), 40)))
            b[at:at + 4] = struct.pack(">I", int(rng.integers(0, 2**32)))
        yield bytes(b)


def test_fuzzed_images_load_or_name_the_file(tmp_path):
    rng = np.random.default_rng(SEED)
    seeds = []
    for ext in (".png", ".jpg", ".tif", ".bmp", ".webp"):
        path = tmp_path / f"seed{ext}"
        write_image(path, rng.integers(0, 255, (24, 32, 3), dtype=np.uint8))
        seeds.append((ext, path.read_bytes()))
    n = 0
    for ext, data in seeds:
        for bad in mutations(data, rng, 40):
            path = tmp_path / f"bad{n}{ext}"
            path.write_bytes(bad)
            n += 1
            try:
                image = read_image(path)
            except ImageReadError as exc:
                assert str(path) in str(exc)
                continue
            assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert n == 200


def test_fuzzed_label_pngs_load_as_class_indices_or_name_the_file(tmp_path):
    rng = np.random.default_rng(SEED + 1)
    path = tmp_path / "seed.png"
    write_label(path, rng.integers(0, 3, (20, 24), dtype=np.uint8))
    for n, bad in enumerate(mutations(path.read_bytes(), rng, 120)):
        target = tmp_path / f"bad{n}.png"
        target.write_bytes(bad)
        try:
            labels = read_label(target, 3)
        except ImageReadError as exc:
            assert str(target) in str(exc)
            continue
        assert labels.dtype == np.uint8 and labels.ndim == 2
        assert ((labels < 3) | (labels == 255)).all()


def _project_variants(rng):
    base = {"format": "segassist-project", "version": 1, "classes": [{"name": "a", "color": [1, 2, 3]}, "b"],
            "settings": {}, "images": {"x.png": {"status": "edited", "mean_entropy": 0.5}}, "models": [],
            "current_model": None}
    junk = [None, True, -1, 1e308, float("nan"), "", "abc", [], {}, [[[]]], {"a": {"b": {}}}, "\udc80x", 2**70]
    for key in list(base):
        for value in junk:
            yield {**base, key: value}
    for value in junk:
        yield {**base, "images": {"x.png": {"status": value, "mean_entropy": value}}}
        yield {**base, "classes": [value]}
        yield {**base, "models": [{"path": value}]}
        yield {**base, "classes": [{"name": "a", "color": value}]}
    for _ in range(40):
        text = json.dumps(base)
        cut = int(rng.integers(0, len(text)))
        yield text[:cut] + "".join(chr(int(c)) for c in rng.integers(32, 127, 3)) + text[cut + 3:]


def test_fuzzed_project_files_open_or_name_the_file_and_start_fresh_always_works(tmp_path):
    rng = np.random.default_rng(SEED + 2)
    folder = tmp_path / "p"
    folder.mkdir()
    write_image(folder / "x.png", np.zeros((8, 8, 3), np.uint8))
    path = folder / "segassist.json"
    count = 0
    for variant in _project_variants(rng):
        text = variant if isinstance(variant, str) else json.dumps(variant)
        try:
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
        except UnicodeEncodeError:
            continue
        count += 1
        try:
            project = Project.open(folder)
        except ProjectFileError as exc:
            assert str(path) in str(exc)
            project = Project.open(folder, start_fresh=True)
        project.save()  # whatever was opened can be saved again (no surrogate reaches the file)
        project.close()
        for kept in folder.glob("segassist.json.broken-*"):
            kept.unlink()
    assert count > 150


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "m.safetensors"
    engine.save_model(path, tiny_model("deeplabv3plus", 2), classes=["a", "b"])
    return path


def test_fuzzed_model_files_load_or_name_the_file(model_file, tmp_path):
    rng = np.random.default_rng(SEED + 3)
    data = model_file.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    doc = json.loads(header["__metadata__"]["segassist"])
    variants = []
    for key, value in [("classes", "abc"), ("classes", [1, 2]), ("config", {"name": "ccnet", "recurrence": 10**8}),
                       ("config", {**doc["config"], "channels": 10**9}), ("config", {**doc["config"], "aux": 3}),
                       ("config", {**doc["config"], "name": ["x"]}), ("config", {**doc["config"], "num_classes": 0}),
                       ("normalization", {"mean": [0], "std": [0, 0, 0]}), ("version", 99), ("config", [])]:
        variants.append({**doc, key: value})
    cases = []
    for v in variants:
        meta = {**header["__metadata__"], "segassist": json.dumps(v)}
        h = json.dumps({**header, "__metadata__": meta}).encode()
        cases.append(struct.pack("<Q", len(h)) + h + data[8 + n:])
    cases += list(mutations(data, rng, 60))
    for i, bad in enumerate(cases):
        path = tmp_path / f"bad{i}.safetensors"
        path.write_bytes(bad)
        try:
            loaded = engine.load_model(path)
        except ModelFileError as exc:
            assert str(path) in str(exc)
        else:
            assert len(loaded.classes) == 2 and i >= len(variants)


def test_model_files_with_bool_or_complex_weights_are_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    src = tmp_path / "m.safetensors"
    engine.save_model(src, tiny_model("deeplabv3plus", 2), classes=["a", "b"])
    from safetensors import safe_open

    with safe_open(str(src), "pt") as f:
        meta = f.metadata()
    state = load_file(src)
    key = next(k for k, v in state.items() if v.is_floating_point())
    for dtype in (torch.bool, torch.complex64, torch.int32):
        bad = dict(state)
        bad[key] = state[key].to(dtype)
        path = tmp_path / f"{dtype}.safetensors".replace("torch.", "")
        save_file(bad, str(path), metadata=meta)
        with pytest.raises(ModelFileError, match=f"{path.name}.*{key}"):
            engine.load_model(path)


def test_fuzzed_checkpoints_import_or_name_the_file(tmp_path):
    rng = np.random.default_rng(SEED + 4)
    shared: object = {"leaf": 1}
    for _ in range(40):
        shared = {"a": shared, "b": shared}  # 2**40 paths through 40 objects
    deep: object = []
    for _ in range(200):  # deeper than MAX_DEPTH (and than torch.save can write much beyond)
        deep = [deep]
    cases = {
        "shared.pth": {"state_dict": {"w": torch.zeros(1)}, "meta": shared},
        "deep.pth": {"state_dict": {"w": torch.zeros(1)}, "meta": {"x": deep}},
        "list.pth": [1, 2, 3],
        "nontensor.pth": {"state_dict": {"w": "no"}},
    }
    for name, obj in cases.items():
        path = tmp_path / name
        torch.save(obj, path)
        with pytest.raises(MMSegImportError, match=name):
            engine.import_mmseg(path)
    buf = io.BytesIO()
    torch.save({"state_dict": {"decode_head.conv_seg.weight": torch.zeros(2, 4, 1, 1)}}, buf)
    for i, bad in enumerate(mutations(buf.getvalue(), rng, 60)):
        path = tmp_path / f"bad{i}.pth"
        path.write_bytes(bad)
        with pytest.raises(MMSegImportError, match=f"bad{i}.pth"):
            engine.import_mmseg(path)
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps(eval))  # noqa: S301 - a pickle that names a builtin
    with pytest.raises(MMSegImportError, match="evil.pth"):
        engine.import_mmseg(path)


def test_option_values_out_of_range_are_refused():
    for arch, option, value in [("ccnet", "recurrence", 10**8), ("ccnet", "channels", 0), ("encnet", "num_codes", -1),
                                ("setr_naive", "num_convs", 1000), ("segmenter_mask", "num_layers", 10**6),
                                ("deeplabv3plus", "aux", 2), ("deeplabv3plus", "dropout", 5.0)]:
        with pytest.raises(ValueError, match=f"{option}="):
            engine.create_model(arch, 2, backbone="test_resnet", **{option: value})
