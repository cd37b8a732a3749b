"""Fine-tuning from a model file: classes kept, new classes added, lineage recorded."""

import numpy as np
import pytest
import torch

import engine
from training import train
from training.config import TrainConfig
from training.finetune import file_sha256, initial_model, widen_state

from .conftest import CLASSES, TINY_OPTIONS, tiny_config, write_shapes


@pytest.fixture
def parent(tmp_path):
    torch.manual_seed(1)
    model = engine.create_model("deeplabv3plus", 3, backbone="test_resnet", **TINY_OPTIONS)
    history = [{"iterations": 100, "note": "an earlier run"}]
    return engine.save_model(tmp_path / "parent.safetensors", model, classes=CLASSES, history=history,
                             normalization={"mean": [1.0, 2.0, 3.0], "std": [4.0, 5.0, 6.0]})


def test_widen_state_copies_old_class_slices_along_any_dimension():
    old = {"w": torch.ones(3, 8, 1, 1), "emb": torch.ones(1, 3, 8), "b": torch.ones(3), "same": torch.ones(8, 8)}
    fresh = {"w": torch.zeros(4, 8, 1, 1), "emb": torch.zeros(1, 4, 8), "b": torch.zeros(4), "same": torch.zeros(8, 8)}
    out = widen_state(old, fresh, 3, 4)
    assert out["w"][:3].eq(1).all() and out["w"][3].eq(0).all()
    assert out["emb"][:, :3].eq(1).all() and out["emb"][:, 3].eq(0).all()
    assert out["b"].tolist() == [1, 1, 1, 0] and out["same"].eq(1).all()
    with pytest.raises(ValueError, match=r"x: shape \(5, 8\) cannot grow to \(6, 8\)"):
        widen_state({"x": torch.ones(5, 8)}, {"x": torch.zeros(6, 8)}, 3, 4)
    with pytest.raises(ValueError, match=r"y: shape \(3, 8\) cannot grow to \(4, 9\)"):
        widen_state({"y": torch.ones(3, 8)}, {"y": torch.zeros(4, 9)}, 3, 4)


def test_added_class_gets_a_fresh_row_and_old_rows_are_kept(parent, tmp_path):
    old = engine.load_model(parent).model.state_dict()
    cfg = tiny_config(tmp_path, tmp_path, tmp_path / "out.safetensors", init=parent, arch=None, backbone=None,
                      model_options={}, classes=(*CLASSES, "triangle"))
    start = initial_model(cfg)
    assert start.model.num_classes == 4 and [c.name for c in start.classes][-1] == "triangle"
    assert start.parent == {"name": "parent.safetensors", "sha256": file_sha256(parent)}
    assert start.normalization == {"mean": [1.0, 2.0, 3.0], "std": [4.0, 5.0, 6.0]}
    new = start.model.state_dict()
    grown = [k for k in new if new[k].shape != old[k].shape]
    assert sorted(grown) == ["auxiliary_head.conv_seg.bias", "auxiliary_head.conv_seg.weight",
                             "decode_head.conv_seg.bias", "decode_head.conv_seg.weight"]
    for k in new:
        if k in grown:
            assert torch.equal(new[k][:3], old[k])
            assert new[k][3].abs().sum() > 0 or k.endswith("bias")  # the layer's own initialisation
        else:
            assert torch.equal(new[k], old[k]), k


def test_fine_tune_with_an_added_class_trains_and_records_the_parent(parent, tmp_path):
    images, labels = write_shapes(tmp_path / "data", 4, 48, seed=5, classes=("background", "disk", "box",
                                                                              "triangle"))
    val_images, val_labels = write_shapes(tmp_path / "val", 2, 48, seed=6)
    events = []
    result = train(tiny_config(images, labels, tmp_path / "out.safetensors", init=parent, arch=None, backbone=None,
                               model_options={}, classes=(*CLASSES, "triangle"), val_images=val_images,
                               val_labels=val_labels, iterations=4), on_event=events.append)
    validations = [e for e in events if e.kind == "validation"]
    assert validations[0].iteration == 0 and len(validations[0].per_class_iou) == 4  # before training
    loaded = engine.load_model(result.model_path)
    assert [c.name for c in loaded.classes] == [*CLASSES, "triangle"]
    assert loaded.meta["parent"]["name"] == "parent.safetensors"
    history = loaded.meta["history"]
    assert history[0] == {"iterations": 100, "note": "an earlier run"}
    assert history[1]["iterations"] == 4 and history[1]["train_images"] == 4 and history[1]["val_images"] == 2
    assert history[1]["metrics"]["miou"] == pytest.approx(validations[-1].miou)
    assert loaded.meta["crop_size"] == 32 and loaded.meta["normalization"]["mean"] == [1.0, 2.0, 3.0]
    assert not np.isnan(history[1]["wall_time_s"])


def test_fine_tuning_refuses_fewer_classes_and_another_architecture(parent, tmp_path):
    base = dict(init=parent, arch=None, backbone=None, model_options={})
    with pytest.raises(ValueError, match="the model has 3 classes .* but 2 are given"):
        initial_model(tiny_config(tmp_path, tmp_path, tmp_path / "o", **{**base, "classes": ("a", "b")}))
    with pytest.raises(ValueError, match="keeps the model's architecture; drop --arch encnet"):
        initial_model(tiny_config(tmp_path, tmp_path, tmp_path / "o", **{**base, "arch": "encnet"}))
    start = initial_model(tiny_config(tmp_path, tmp_path, tmp_path / "o", **{**base, "classes": None}))
    assert [c.name for c in start.classes] == list(CLASSES)  # the model's own classes by default


def test_freeze_backbone_trains_the_heads_only(parent, shapes, tmp_path):
    before = engine.load_model(parent).model.state_dict()
    result = train(tiny_config(*shapes, tmp_path / "out.safetensors", init=parent, arch=None, backbone=None,
                               model_options={}, classes=None, freeze_backbone=True, iterations=3))
    after = result.model.state_dict()
    backbone = [k for k in after if k.startswith("backbone.")]
    assert backbone and all(torch.equal(after[k], before[k]) for k in backbone)  # BatchNorm statistics too
    assert not torch.equal(after["decode_head.conv_seg.weight"], before["decode_head.conv_seg.weight"])


def test_a_fine_tune_centres_crops_of_the_corrected_images_on_what_the_parent_got_wrong(parent, shapes, tmp_path,
                                                                                          monkeypatch):
    from training import loop

    marked = []

    def spy(model, samples, names, rt, seed=0):  # the real marking, its outcome kept for the test
        count = real(model, samples, names, rt, seed=seed)
        marked.append((count, {s.name: s.corrected for s in samples}))
        return count

    real = loop.mark_model_corrections
    monkeypatch.setattr(loop, "mark_model_corrections", spy)
    cfg = tiny_config(*shapes, tmp_path / "out.safetensors", init=parent, arch=None, backbone=None, model_options={},
                      classes=None, focus_names=("000.png", "001.png"), correction_crops=1.0, iterations=2)
    assert TrainConfig.from_args(cfg.to_args()) == cfg
    result = train(cfg)
    assert result.iterations == 2 and result.model_path.exists()
    (count, corrected), = marked
    assert count == 2 and corrected["000"] is not None and corrected["001"] is not None  # a random parent errs
    assert all(corrected[n] is None for n in corrected if n not in ("000", "001"))
    with pytest.raises(ValueError, match=r"correction_crops must lie in \[0, 1\], got 1.5"):
        tiny_config(*shapes, tmp_path / "o", correction_crops=1.5)
