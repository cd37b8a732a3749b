"""`TrainConfig` <-> argv in one place, events back into their dataclasses, and `training` without torch."""

import dataclasses
import json
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from engine.classes import as_classes
from training.arguments import UsageError, flag
from training.config import OPTIMIZERS, PRECISIONS, TrainConfig
from training.events import (
    EVENT_TYPES,
    DoneEvent,
    EventParseError,
    StartEvent,
    StepEvent,
    ValidationEvent,
    parse_event,
)

ROOT = Path(__file__).resolve().parents[2]
BASE = dict(images=Path("/data/images"), labels=Path("/data/labels"), out=Path("/data/m.safetensors"))


def other_value(name: str, hint, default):
    """A valid value for the field that differs from its default, chosen by the field's type."""
    inner = typing.get_args(hint)[0] if type(None) in typing.get_args(hint) else hint
    if name == "classes":
        return tuple(as_classes([{"name": "sky", "color": [1, 2, 3]}, {"name": "road, wet", "color": [4, 5, 6]}]))
    if name == "pretrained":
        return "weights/backbone.safetensors"
    if name == "optimizer":
        return next(o for o in OPTIMIZERS if o != default)
    if name == "precision":
        return next(p for p in PRECISIONS if p != default)
    if inner is bool:
        return not default
    if inner is Path:
        return Path(f"/data/{name}")
    if inner is int:
        return (default or 0) + 3
    if inner is float:
        return 0.25 if default in (None, 0.0) else default * 0.5
    if inner is str:
        return f"x_{name}"
    if typing.get_origin(inner) is tuple and typing.get_args(inner) == (str, ...):
        return ("a.png", "b c.png", "d,e.png")
    if typing.get_origin(inner) is tuple:
        return (0.75, 1.5)
    if name == "model_options":
        return {"output_stride": 8, "channels": 16, "norm": "bn", "dilations": [1, 6]}
    raise AssertionError(f"TrainConfig.{name}: no test value for the type {hint}; add one here")


def test_every_field_survives_to_args_and_back():
    hints = typing.get_type_hints(TrainConfig)
    values = dict(BASE)
    for f in dataclasses.fields(TrainConfig):
        if f.name in BASE:
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        values[f.name] = other_value(f.name, hints[f.name], default)
    # val_names is a validation set of its own (without val_images or val_fraction): one config each
    named = TrainConfig(**{**values, "val_images": None, "val_labels": None, "val_fraction": 0.0})
    folders = TrainConfig(**{**values, "val_names": ()})
    args = named.to_args() + folders.to_args()
    for cfg in (named, folders):
        assert TrainConfig.from_args(cfg.to_args()) == cfg
    for f in dataclasses.fields(TrainConfig):  # every field is on the command line, as its own flag
        assert flag(f.name) in args or f"--no-{flag(f.name)[2:]}" in args, f.name


def test_defaults_are_left_out_and_come_back():
    cfg = TrainConfig(**BASE, classes=("a", "b"))
    args = cfg.to_args()
    assert args[:6] == ["--images", "/data/images", "--labels", "/data/labels", "--out", "/data/m.safetensors"]
    assert len(args) == 8 and TrainConfig.from_args(args) == cfg


def test_the_established_flags_still_read():
    cfg = TrainConfig.from_args(["--images", "i", "--labels", "l", "--out", "o", "--classes", "a,b,c", "--iters", "7",
                                 "--batch", "2", "--crop", "64", "--warmup", "3", "--option", "output_stride=8",
                                 "--option", "norm=gn", "--grad-clip", "0", "--pretrained", "timm",
                                 "--freeze-backbone", "--lr", "0.01"])
    assert (cfg.iterations, cfg.batch_size, cfg.crop_size, cfg.warmup_iters) == (7, 2, 64, 3)
    assert cfg.model_options == {"output_stride": 8, "norm": "gn"} and cfg.grad_clip is None
    assert cfg.pretrained is True and cfg.freeze_backbone and cfg.lr == 0.01
    assert [c.name for c in cfg.classes] == ["a", "b", "c"]
    back = TrainConfig.from_args(cfg.to_args())
    assert back == cfg and back.pretrained is True


def test_names_from_a_comma_list_a_file_or_json(tmp_path):
    listed = tmp_path / "names.txt"
    listed.write_text("a.png\n\n  b.png \n")
    for value, expected in (("a.png,b.png", ("a.png", "b.png")), (str(listed), ("a.png", "b.png")),
                            ('["x,y.png", "z.png"]', ("x,y.png", "z.png"))):
        cfg = TrainConfig.from_args([*TrainConfig(**BASE, classes=("a",)).to_args(), "--focus-names", value])
        assert cfg.focus_names == expected


def test_a_long_list_of_names_goes_through_the_command_line():
    names = tuple(f"0016E5_{i:05d}.png" for i in range(2000))  # far beyond the longest file name
    cfg = TrainConfig(**BASE, classes=("a",), focus_names=names, val_names=names[:30])
    assert TrainConfig.from_args(cfg.to_args()) == cfg


def test_classes_with_colours_inline_or_from_a_file(tmp_path):
    doc = {"classes": [{"name": "sky", "color": [10, 20, 30]}, {"name": "road", "color": [1, 2, 3]}]}
    path = tmp_path / "classes.json"
    path.write_text(json.dumps(doc))
    for value in (str(path), json.dumps(doc), json.dumps(doc["classes"])):
        cfg = TrainConfig.from_args(["--images", "i", "--labels", "l", "--out", "o", "--classes", value])
        assert [(c.name, c.color) for c in cfg.classes] == [("sky", (10, 20, 30)), ("road", (1, 2, 3))]


@pytest.mark.parametrize("argv, message", [
    (["--labels", "l", "--out", "o", "--classes", "a"], "--images"),
    (["--images", "i", "--labels", "l", "--out", "o", "--classes", "a", "--iters", "many"], "--iters"),
    (["--images", "i", "--labels", "l", "--out", "o", "--classes", "a", "--option", "novalue"], "KEY=VALUE"),
    (["--images", "i", "--labels", "l", "--out", "o", "--classes", "[{]"], "not valid JSON"),
    (["--images", "i", "--labels", "l", "--out", "o", "--classes", "a", "--optimizer", "lion"], "lion"),
])
def test_bad_arguments_say_which(argv, message):
    with pytest.raises(UsageError, match=message):
        TrainConfig.from_args(argv)


def test_invalid_values_are_refused_by_the_config():
    with pytest.raises(ValueError, match="iterations must be >= 1"):
        TrainConfig.from_args(["--images", "i", "--labels", "l", "--out", "o", "--classes", "a", "--iters", "0"])


EXAMPLES = [
    StartEvent(iterations=10, train_images=3, val_images=2, skipped_images=0, arch="deeplabv3plus",
               backbone="resnet18", classes=["a", "b"], device="cpu", precision="bf16"),
    StepEvent(iteration=1, iterations=10, loss=0.5, lr=0.01, elapsed_s=1.0, eta_s=9.0, images_per_s=8.0),
    ValidationEvent(iteration=0, miou=None, pixel_accuracy=0.5, per_class_iou=[0.25, None],
                    confusion=[[1, 0], [0, 1]]),
    DoneEvent(iteration=10, model_path="m.safetensors", best_path=None, best_miou=None, last_miou=0.4,
              wall_time_s=2.5),
]


@pytest.mark.parametrize("event", EXAMPLES, ids=lambda e: e.kind)
def test_events_parse_back_from_their_json_ignoring_newer_keys(event):
    data = json.loads(event.to_json())
    assert parse_event(data) == event
    assert parse_event({**data, "a_field_from_a_newer_trainer": [1, 2]}) == event


def test_every_event_kind_is_known_and_bad_dicts_say_why():
    assert set(EVENT_TYPES) == {"start", "step", "validation", "checkpoint", "done", "error"}
    with pytest.raises(EventParseError, match="unknown event kind 'epoch'"):
        parse_event({"event": "epoch"})
    with pytest.raises(EventParseError, match="step event without loss"):
        parse_event({k: v for k, v in EXAMPLES[1].to_dict().items() if k != "loss"})
    with pytest.raises(EventParseError, match="JSON object"):
        parse_event([1])
    done = parse_event({k: v for k, v in EXAMPLES[3].to_dict().items() if k != "stopped"})
    assert done.stopped is False  # a field with a default may be absent


def test_config_and_events_import_without_torch():
    code = ("import sys\nimport training, training.config, training.events, training.arguments\n"
            "from training import TrainConfig, parse_event\n"
            "TrainConfig.from_args(['--images', 'i', '--labels', 'l', '--out', 'o', '--classes', 'a'])\n"
            "heavy = [m for m in ('torch', 'timm', 'cv2') if m in sys.modules]\nassert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
