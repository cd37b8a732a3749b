"""SAM 2 through the real loading code on a tiny random model: load, embed, decode, cache, errors."""

import numpy as np
import pytest

pytest.importorskip("sam2")

from engine.sam import EmbeddingCache, SamError, SamModel, config_for, image_digest  # noqa: E402
from tests.engine.tiny_sam import OVERRIDES, write_tiny_checkpoint  # noqa: E402


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("sam") / "sam2.1_hiera_tiny.pt")


@pytest.fixture(scope="module")
def sam(checkpoint):
    return SamModel(checkpoint, overrides=OVERRIDES)


def synthetic_image():
    image = np.full((90, 120, 3), 30, np.uint8)
    image[20:60, 30:80] = (220, 200, 40)
    return image


def test_the_official_layout_loads_with_the_shipped_config_and_the_same_weights(checkpoint, sam):
    import torch

    state = torch.load(checkpoint, weights_only=True)["model"]
    loaded = sam.model.state_dict()
    assert set(state) == set(loaded)
    name = "image_encoder.trunk.patch_embed.proj.weight"
    assert torch.equal(state[name], loaded[name])
    assert sam.config == "configs/sam2.1/sam2.1_hiera_t.yaml" and sam.image_size == 256
    encoder = sam.model.sam_prompt_encoder  # its cached dense encoding is the one it computes
    with torch.inference_mode():
        assert torch.equal(encoder.get_dense_pe(), type(encoder).get_dense_pe(encoder))
    assert config_for("sam2_hiera_base_plus.pt") == "configs/sam2/sam2_hiera_b+.yaml"


def test_a_click_and_a_box_give_masks_of_the_image_size_and_refine(sam):
    image = synthetic_image()
    emb = sam.embed(image)
    assert emb.image_hw == (90, 120) and emb.image_embed.dtype == np.float16
    first = sam.segment(emb, [(40.5, 55.5)], [1])
    assert first.mask.shape == (90, 120) and first.mask.dtype == bool
    assert first.logits.shape == (1, 64, 64) and np.isfinite(first.score)
    second = sam.segment(emb, [(40.5, 55.5), (5.5, 5.5)], [1, 0], box=(15, 25, 65, 85), mask_input=first.logits)
    assert second.mask.shape == (90, 120)
    start = sam.mask_logits(image[:, :, 0] > 100)
    assert start.shape == (1, 64, 64) and start.max() > 0 > start.min()
    assert sam.segment(emb, mask_input=start).mask.shape == (90, 120)
    with pytest.raises(ValueError, match="point, a box or a mask"):
        sam.segment(emb)
    with pytest.raises(ValueError, match="labels"):
        sam.segment(emb, [(1, 1)], [])


def test_bad_checkpoints_are_named_and_refused(tmp_path, checkpoint):
    import torch

    with pytest.raises(SamError, match="no such"):
        SamModel(tmp_path / "sam2.1_hiera_tiny.pt")
    odd = tmp_path / "weights.pt"
    odd.write_bytes(checkpoint.read_bytes())
    with pytest.raises(SamError, match="not an official SAM 2 checkpoint name"):
        SamModel(odd)
    junk = tmp_path / "sam2.1_hiera_small.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(SamError, match="sam2.1_hiera_small.pt: cannot be loaded"):
        SamModel(junk)
    other = tmp_path / "sam2.1_hiera_large.pt"
    torch.save({"weights": {}}, other)
    with pytest.raises(SamError, match="no 'model' entry"):
        SamModel(other)
    wider = [o.replace("embed_dim=8", "embed_dim=16") for o in OVERRIDES]
    with pytest.raises(SamError, match="cannot be loaded as sam2.1_hiera_t"):
        SamModel(checkpoint, overrides=wider)  # weights of another shape than the config's


def test_the_embedding_cache_hits_by_content_and_model_and_drops_torn_files(tmp_path, sam):
    cache = EmbeddingCache(tmp_path / "cache")
    image = synthetic_image()
    emb = sam.embed(image)
    key = image_digest(image)
    assert cache.get(sam.key, key) is None
    cache.put(sam.key, key, emb)
    hit = cache.get(sam.key, key)
    np.testing.assert_array_equal(hit.image_embed, emb.image_embed)
    assert [f.shape for f in hit.high_res] == [f.shape for f in emb.high_res] and hit.image_hw == emb.image_hw
    a = sam.segment(emb, [(40.5, 55.5)], [1])
    b = sam.segment(hit, [(40.5, 55.5)], [1])
    np.testing.assert_array_equal(a.mask, b.mask)
    changed = image.copy()
    changed[0, 0] = 0
    assert image_digest(changed) != key and cache.get(sam.key, image_digest(changed)) is None
    assert cache.get("another-model", key) is None
    cache.path(sam.key, key).write_bytes(b"torn")
    assert cache.get(sam.key, key) is None and not cache.path(sam.key, key).exists()
    cache.put(sam.key, key, emb)
    assert cache.clear(sam.key) == 1


def test_the_cache_keeps_to_its_size_dropping_the_least_recently_used(tmp_path, sam):
    import os

    emb = sam.embed(synthetic_image())
    probe = EmbeddingCache(tmp_path / "probe")
    size = probe.put(sam.key, "x", emb).stat().st_size
    cache = EmbeddingCache(tmp_path / "cache", max_bytes=2 * size + size // 2)  # room for two
    for i, name in enumerate(("a", "b")):
        os.utime(cache.put(sam.key, name, emb), (1000 + i, 1000 + i))
    assert cache.get(sam.key, "a") is not None  # a is used again: b is now the oldest
    cache.put(sam.key, "c", emb)
    assert {p.stem for p in (tmp_path / "cache" / sam.key).glob("*.npz")} == {"a", "c"}
