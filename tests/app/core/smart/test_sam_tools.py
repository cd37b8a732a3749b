"""SAM in the app's core: background embeddings (cache, cancel on switch), prompts, accept, the proposal as prompt."""

import threading

import numpy as np
import pytest

pytest.importorskip("sam2")

from app.core.editing.document import LabelDocument  # noqa: E402
from app.core.editing.protection import PaintGuard  # noqa: E402
from app.core.smart.sam_prefetch import EmbeddingPrefetcher  # noqa: E402
from app.core.smart.sam_prompts import SamPrompt, accept, proposal_region, refine_uncertain  # noqa: E402
from engine.sam import EmbeddingCache, SamModel  # noqa: E402
from tests.engine.tiny_sam import OVERRIDES, write_tiny_checkpoint  # noqa: E402


@pytest.fixture(scope="module")
def sam(tmp_path_factory):
    return SamModel(write_tiny_checkpoint(tmp_path_factory.mktemp("sam") / "sam2.1_hiera_tiny.pt"),
                    overrides=OVERRIDES)


class GatedModel:
    """The real model, whose `embed` waits for the test to let it go (to catch the worker mid-image)."""

    def __init__(self, model):
        self.model, self.key = model, model.key
        self.started, self.go = threading.Event(), threading.Event()
        self.embedded: list[tuple[int, int]] = []

    def embed(self, image):
        self.started.set()
        assert self.go.wait(10)
        self.embedded.append(image.shape[:2])
        return self.model.embed(image)


def image(seed: int, shape=(40, 50)):
    return np.random.default_rng(seed).integers(0, 255, (*shape, 3), dtype=np.uint8)


def test_prefetch_embeds_the_current_then_next_images_caches_them_and_drops_them_on_switch(tmp_path, sam):
    gated = GatedModel(sam)
    ready = []
    pre = EmbeddingPrefetcher(gated, EmbeddingCache(tmp_path), on_ready=lambda n, e: ready.append(n))
    try:
        pre.request([("a", lambda: image(0)), ("b", lambda: image(1)), ("c", lambda: image(2))])
        assert gated.started.wait(10)
        assert pre.running == "a" and pre.pending() == ["b", "c"]
        pre.request([("d", lambda: image(3, (30, 30)))])  # the person switched to d
        assert pre.pending() == ["d"]
        gated.go.set()
        assert pre.wait_idle(30)
        assert ready == ["d"] and gated.embedded == [(40, 50), (30, 30)]  # b and c never ran
        assert pre.get("d").image_hw == (30, 30) and pre.get("a") is None
        again = EmbeddingPrefetcher(sam, EmbeddingCache(tmp_path))
        try:
            again.request([("a", lambda: image(0)), ("d", lambda: image(3, (30, 30)))])
            assert again.wait_idle(30)
            assert again.cache_hits == 2 and again.computed == 0  # a reached the disk although dropped
            again.request([("e", lambda: image(9))])
            assert again.wait_idle(30) and again.computed == 1
        finally:
            again.close()
    finally:
        gated.go.set()
        pre.close()


def test_a_failing_image_is_reported_and_the_next_still_embedded(sam):
    failed, ready = [], []
    pre = EmbeddingPrefetcher(sam, None, on_ready=lambda n, e: ready.append(n),
                              on_failed=lambda n, why: failed.append((n, why)))
    try:
        def broken():
            raise OSError("unreadable file")
        pre.request([("x", broken), ("y", lambda: image(5))])
        assert pre.wait_idle(30)
        assert failed == [("x", "unreadable file")] and ready == ["y"]
    finally:
        pre.close()


def test_clicks_refine_and_accept_is_one_guarded_undo_step(sam):
    img = np.zeros((48, 64, 3), np.uint8)
    img[10:30, 20:50] = 200
    emb = sam.embed(img)
    prompt = SamPrompt()
    prompt.add_point((20.5, 35.5))
    first = prompt.run(sam, emb)
    prompt.add_point((2.5, 2.5), positive=False)
    second = prompt.run(sam, emb)
    assert first.mask.shape == second.mask.shape == (48, 64) and prompt.result is second
    prompt.remove_last()
    prompt.remove_last()
    assert prompt.empty and prompt.result is None
    doc = LabelDocument(img)
    doc.paint((0, 0), np.ones((48, 4), bool), 1)
    doc.guard = PaintGuard(protected=frozenset({1}))
    mask = np.zeros((48, 64), bool)
    mask[:, :10] = True
    assert accept(doc, mask, 3) is not None
    assert (doc.labels[:, :4] == 1).all() and (doc.labels[:, 4:10] == 3).all() and (doc.labels[:, 10:] == 255).all()
    doc.undo()
    assert (doc.labels[:, 4:] == 255).all()
    with pytest.raises(ValueError, match="shape"):
        accept(doc, mask[:10], 3)


def test_the_proposal_as_starting_mask_and_refining_uncertain_regions(sam):
    proposal = np.zeros((48, 64), np.uint8)
    proposal[10:30, 20:50] = 2
    region = proposal_region(proposal, (15.5, 25.5))
    assert region.sum() == 20 * 30 and region[10:30, 20:50].all()
    assert proposal_region(np.full((4, 4), 255, np.uint8), (1, 1)) is None
    img = np.zeros((48, 64, 3), np.uint8)
    img[10:30, 20:50] = 200
    emb = sam.embed(img)
    prompt = SamPrompt(start_mask=region)
    prompt.add_point((15.5, 25.5))
    assert prompt.run(sam, emb).mask.shape == (48, 64)
    entropy = np.zeros((48, 64), np.float32)
    entropy[8:32, 46:54] = 1.0  # the model doubts the right edge of the object
    refined = refine_uncertain(sam, emb, proposal, entropy, threshold=0.5, min_area=16)
    assert refined.shape == proposal.shape
    sure = entropy <= 0.5
    np.testing.assert_array_equal(refined[sure], proposal[sure])  # certain pixels are never touched
    assert set(np.unique(refined[~sure])) <= {0, 2}
    assert (proposal[10:30, 20:50] == 2).all()  # the input is not changed
