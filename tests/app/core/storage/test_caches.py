"""The SAM embedding cache and the cached proposals trust nothing they read: an entry that is not exactly
what was written (a deflate bomb, other shapes or dtypes, a changed byte, a FIFO) is dropped and made again,
and a crafted proposal never makes its image unopenable."""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib

import numpy as np
import pytest

from app.core.storage.predictions import PredictionFileError, read_prediction, write_prediction
from app.core.storage.project import Project
from engine.images import write_image
from engine.sam import Embedding, EmbeddingCache
from tests.hang_guard import hang_guard as deadline


def embedding(seed: int = 0) -> Embedding:
    rng = np.random.default_rng(seed)
    return Embedding(rng.standard_normal((32, 16, 16)).astype(np.float16),
                     (rng.standard_normal((8, 64, 64)).astype(np.float16),
                      rng.standard_normal((16, 32, 32)).astype(np.float16)), (120, 160))


def test_a_written_embedding_comes_back_exactly(tmp_path):
    cache = EmbeddingCache(tmp_path)
    emb = embedding()
    cache.put("m", "i", emb)
    hit = cache.get("m", "i")
    np.testing.assert_array_equal(hit.image_embed, emb.image_embed)
    assert [f.tolist() for f in hit.high_res] == [f.tolist() for f in emb.high_res] and hit.image_hw == (120, 160)


def _npz(path, **arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())


@pytest.mark.parametrize("change", [
    "levels_negative", "levels_huge", "float64", "two_dims", "hw_negative", "one_value_changed", "extra_member",
])
def test_an_entry_that_is_not_what_was_written_is_dropped(tmp_path, change):
    cache = EmbeddingCache(tmp_path)
    emb = embedding()
    path = cache.put("m", "i", emb)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    if change == "levels_negative":
        arrays["levels"] = np.array(-1)
    elif change == "levels_huge":
        arrays["levels"] = np.array(10**9)
    elif change == "float64":
        arrays["image_embed"] = arrays["image_embed"].astype(np.float64)
    elif change == "two_dims":
        arrays["image_embed"] = arrays["image_embed"][0]
    elif change == "hw_negative":
        arrays["image_hw"] = np.array([-5, 160])
    elif change == "one_value_changed":
        arrays["high_res_1"] = arrays["high_res_1"].copy()
        arrays["high_res_1"][3, 4, 5] += np.float16(1)
    else:
        arrays["high_res_2"] = arrays["high_res_1"]
    _npz(path, **arrays)
    assert cache.get("m", "i") is None
    assert not path.exists()  # dropped: the caller computes it again


def test_a_deflate_bomb_is_never_inflated(tmp_path):
    """An entry whose member declares 290 MB of float16 zeros (compressed to under a megabyte)."""
    cache = EmbeddingCache(tmp_path)
    path = cache.path("m", "i")
    path.parent.mkdir(parents=True)
    shape = (140, 1024, 1024)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f2", "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("image_embed.npy", "w", force_zip64=True) as f:
            f.write(header.getvalue())
            left = 2 * 140 * 1024 * 1024
            while left:
                f.write(bytes(min(left, 1 << 24)))
                left -= min(left, 1 << 24)
        for name, arr in (("image_hw", np.array([64, 64])), ("levels", np.array(1)),
                          ("high_res_0", np.zeros((1, 2, 2), np.float16))):
            buf = io.BytesIO()
            np.save(buf, arr)
            z.writestr(f"{name}.npy", buf.getvalue())
    assert path.stat().st_size < 2 << 20
    assert cache.get("m", "i") is None and not path.exists()


def test_a_fifo_in_the_cache_is_dropped_without_blocking(tmp_path):
    cache = EmbeddingCache(tmp_path)
    path = cache.path("m", "i")
    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    with deadline(20):
        assert cache.get("m", "i") is None
    assert not path.exists()


# ---- cached proposals -------------------------------------------------------------------------------

def _png_claiming(width: int, height: int) -> np.ndarray:
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))
    return np.frombuffer(data, np.uint8)


@pytest.fixture
def project_with_proposal(tmp_path):
    folder = tmp_path / "p"
    folder.mkdir()
    write_image(folder / "a.png", np.full((24, 32, 3), 90, np.uint8))
    project = Project.open(folder, ["x", "y"])
    entry = project.entry("a.png")
    project.save_prediction(entry, np.ones((24, 32), np.uint8), np.full((24, 32), 0.5, np.float32),
                            np.full((24, 32), 0.2, np.float32), model="m.safetensors")
    return project, entry


@pytest.mark.parametrize("crafted", ["version_array", "labels_int64", "labels_other_size", "labels_png_bomb",
                                     "entropy_scale_text", "model_number", "not_a_zip", "fifo"])
def test_a_crafted_cached_proposal_never_makes_its_image_unopenable(project_with_proposal, crafted):
    project, entry = project_with_proposal
    path = project.prediction_path(entry)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    if crafted == "version_array":
        arrays["version"] = np.array([1, 2])
    elif crafted == "labels_int64":
        arrays["labels"] = arrays["labels"].astype(np.int64)
    elif crafted == "labels_other_size":
        from app.core.storage.predictions import _png

        arrays["labels"] = _png(np.zeros((10, 10), np.uint8))
    elif crafted == "labels_png_bomb":
        arrays["labels"] = _png_claiming(60000, 60000)
    elif crafted == "entropy_scale_text":
        arrays["entropy_max"] = np.array("lots")
    elif crafted == "model_number":
        arrays["model"] = np.array([1.5, 2.5])
    if crafted == "not_a_zip":
        path.write_bytes(b"PK\x03\x04 garbage")
    elif crafted == "fifo":
        path.unlink()
        os.mkfifo(path)
    else:
        _npz(path, **arrays)
    with pytest.raises(PredictionFileError, match=str(path)), deadline(20):
        read_prediction(path, (24, 32))
    with deadline(20):
        doc = project.load_document(entry)
    assert doc.proposal is None and not os.path.lexists(path)  # dropped: the model proposes it again
    assert project.proposal_model(entry) is None


def test_a_proposal_as_written_reads_back(tmp_path):
    path = tmp_path / "p.npz"
    write_prediction(path, np.eye(8, dtype=np.uint8), np.full((8, 8), 0.25, np.float32),
                     np.full((8, 8), 0.5, np.float32), model="m")
    got = read_prediction(path, (8, 8))
    np.testing.assert_array_equal(got.labels, np.eye(8, dtype=np.uint8))
    assert got.model == "m" and abs(got.mean_entropy - 0.5) < 1e-6 and abs(float(got.confidence.max()) - 0.25) < 0.01
