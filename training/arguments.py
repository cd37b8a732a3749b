"""`TrainConfig` <-> command-line arguments: the one place that converts a run's settings to and from argv.

Every field of `TrainConfig` is a flag: `--<field-name>` (underscores as dashes) unless `FLAGS` gives it a
shorter established name (`--iters`, `--batch`, `--crop`, ...). How a value is written and read follows
the field's type, so a field added to `TrainConfig` is on the command line without a change here:
paths, numbers and strings as themselves (`none` for an absent optional number), booleans as
`--flag` / `--no-flag`, name lists as a comma list (or JSON when a name holds a comma; a file of one
name per line is read too), pairs of numbers as `lo,hi`, and anything else as JSON. A few fields keep
their own form: `--option KEY=VALUE` (repeatable) for `model_options`, `--classes` as names, a JSON
file or inline JSON, `--pretrained timm|FILE`, and `--grad-clip 0` for no clipping.

Nothing here imports torch: the app builds and writes configs without it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from collections.abc import Callable
from pathlib import Path

# Fields whose flag is not `--<field-name>` (the names the command line has always had).
FLAGS = {"iterations": "iters", "batch_size": "batch", "crop_size": "crop", "warmup_iters": "warmup",
         "model_options": "option"}
GROUPS = {
    "data": ("images", "labels", "classes", "val_images", "val_labels", "val_fraction", "val_names", "focus_names",
             "focus_weight", "correction_crops"),
    "model": ("arch", "backbone", "model_options", "init", "pretrained", "freeze_backbone"),
    "schedule": ("iterations", "batch_size", "crop_size", "optimizer", "lr", "weight_decay", "momentum",
                 "head_lr_mult", "warmup_iters", "poly_power", "min_lr_ratio", "grad_clip", "scale_range"),
}
HELP = {
    "images": "folder of training images",
    "labels": "folder of label PNGs named like the images",
    "classes": "comma-separated class names, a JSON file (a list of {\"name\", \"color\"}, or an object with such a "
               "\"classes\" list) or that JSON inline; default: the --init model's classes",
    "val_images": "folder of validation images",
    "val_labels": "folder of validation labels",
    "val_fraction": "without --val-images, hold out this fraction of the labelled images for validation (at "
                    "least 2 images, else none)",
    "val_names": "validation images among --images (comma list, or a file of one name per line), excluded from "
                 "training; with --init the init model is scored on the same images first",
    "focus_names": "image names (comma list, or a file of one per line) sampled --focus-weight times as often "
                   "as the others: the newly corrected images of a fine-tune",
    "focus_weight": "how much more often a --focus-names image is drawn than another one",
    "correction_crops": "with --init: the share of a --focus-names image's crops centred on a pixel the init model "
                        "got wrong (where the person corrected it); 0 = crops anywhere",
    "arch": "architecture (default deeplabv3plus, or the --init model's)",
    "backbone": "timm backbone name (default: the architecture's paper backbone)",
    "model_options": "an architecture option, e.g. --option output_stride=8 (repeatable)",
    "init": "fine-tune from this model file (its classes are kept; --classes may add new ones after them)",
    "pretrained": "backbone weights for a new model: a local .safetensors/.pth file, or 'imagenet' (same as "
                  "'timm'): the installed weights package where the backbone has one (efficientnet_lite0/1/2), "
                  "else timm's, downloaded once (needs the network)",
    "freeze_backbone": "train the heads only (very few labels)",
    "iterations": "iterations",
    "batch_size": "crops per iteration and process",
    "crop_size": "crop size in pixels",
    "lr": "base learning rate (default: the architecture's paper value)",
    "head_lr_mult": "learning-rate factor of everything but the backbone",
    "warmup_iters": "linear warm-up iterations",
    "grad_clip": "gradient norm clip, 0 = off",
    "scale_range": "random rescaling of the training images, as LOW,HIGH",
    "out": "output model file (.safetensors)",
    "device": "auto, cpu, cuda or cuda:N",
    "precision": "auto: bf16 where the device runs it natively, else fp32 (fp16 on older GPUs)",
    "workers": "data loader processes (default 0 on CPU, 4 per GPU)",
    "resume": "continue from the checkpoint beside --out",
    "log_interval": "iterations between step events",
    "val_interval": "iterations between validations (default: a fifth)",
    "checkpoint_interval": "iterations between checkpoints (default: a tenth)",
    "bn_images": "training images whose whole views re-estimate BatchNorm statistics before each validation and "
                 "before the model is written; 0 keeps the running ones",
}


class UsageError(ValueError):
    """Command-line arguments that do not make a run; the message says which and why."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise UsageError(f"{self.prog}: {message}")


def flag(name: str) -> str:
    """The command-line flag of field `name`."""
    return "--" + FLAGS.get(name, name).replace("_", "-")


def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _optional(tp) -> tuple[object, bool]:
    """`(T, True)` for `T | None`, else `(tp, False)`."""
    args = typing.get_args(tp)
    if (typing.get_origin(tp) in (typing.Union, types.UnionType)) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]), True  # noqa: UP007
    return tp, False


def _is_names(tp) -> bool:
    return typing.get_origin(tp) is tuple and typing.get_args(tp) == (str, ...)


def _is_pair(tp) -> bool:
    args = typing.get_args(tp)
    return typing.get_origin(tp) is tuple and len(args) == 2 and all(a in (int, float) for a in args)


def parse_classes(value: str):
    """Class names from `a,b,c`, from a JSON file, or from inline JSON (`[{"name": ..., "color": ...}]`)."""
    from engine.classes import as_classes

    text = value.strip()
    source = "--classes"
    if text.startswith(("[", "{")):
        doc = _json(text, source)
    elif value.endswith(".json") or Path(value).is_file():
        path = Path(value)
        source = str(path)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise UsageError(f"{path}: cannot read the classes ({exc})") from exc
    else:
        return as_classes(n.strip() for n in value.split(","))
    items = doc.get("classes") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise UsageError(f"{source}: expected a list of classes (or an object with a \"classes\" list)")
    try:
        return as_classes(items)
    except ValueError as exc:
        raise UsageError(f"{source}: {exc}") from exc


def parse_names(value: str) -> tuple[str, ...]:
    """Names from a JSON list, a file of one name per line, or a comma list."""
    text = value.strip()
    if text.startswith("["):
        items = _json(text, "names")
        if not isinstance(items, list) or not all(isinstance(n, str) for n in items):
            raise UsageError(f"{value!r}: expected a JSON list of names")
        return tuple(items)
    path = Path(value)
    if text and _is_file(path):
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"{path}: cannot read the names ({exc})") from exc
        return tuple(n.strip() for n in lines if n.strip())
    return tuple(n.strip() for n in value.split(",") if n.strip())


def _write_names(names) -> str:
    names = list(names)
    joined = ",".join(names)
    if any("," in n or n != n.strip() or not n for n in names) or joined.startswith("[") or _is_file(Path(joined)):
        return json.dumps(names, ensure_ascii=False)
    return joined


def _is_file(path: Path) -> bool:
    """Whether `path` is a file; False for a text no file can be named (a long list of names, say)."""
    try:
        return path.is_file()
    except (OSError, ValueError):  # name too long, a NUL byte
        return False


def _json(text: str, what: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{what}: not valid JSON ({exc.msg} at column {exc.colno})") from exc


def _number(kind: type, optional: bool) -> Callable[[str], object]:
    def convert(text: str):
        if optional and text.strip().lower() in ("none", ""):
            return None
        return kind(text)

    convert.__name__ = kind.__name__  # argparse names the type in its error messages
    return convert


def _pair(text: str) -> tuple[float, float]:
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH, got {text!r}")
    return float(parts[0]), float(parts[1])


def _pretrained(text: str) -> bool | str:
    return True if text in ("timm", "imagenet") else text


def parse_option(item: str) -> tuple[str, object]:
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise UsageError(f"--option {item!r}: expected KEY=VALUE")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def _typed(convert: Callable[[str], object], name: str) -> Callable[[str], object]:
    """`convert` as an argparse type: its message is kept (argparse replaces a ValueError's)."""
    def typed(text: str):
        try:
            return convert(text)
        except UsageError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc

    typed.__name__ = name
    return typed


def build_parser(cls, *, prog: str = "segassist-train", description: str | None = None) -> argparse.ArgumentParser:
    """An argparse parser with one flag per field of the dataclass `cls` (defaults: the fields' own)."""
    from training.config import OPTIMIZERS, PRECISIONS

    p = _Parser(prog=prog, description=description, argument_default=argparse.SUPPRESS)
    groups = {name: p.add_argument_group(name) for name in (*GROUPS, "run")}
    group_of = {f: g for g, names in GROUPS.items() for f in names}
    hints = _hints(cls)
    choices = {"optimizer": OPTIMIZERS, "precision": PRECISIONS}
    for f in dataclasses.fields(cls):
        g = groups[group_of.get(f.name, "run")]
        name, tp = f.name, hints[f.name]
        default = _default(f)
        helptext = HELP.get(name, name.replace("_", " "))
        if default is not dataclasses.MISSING and default not in (None, (), {}, False):
            shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
            helptext += f" (default {shown})"
        kw: dict = {"dest": name, "help": helptext, "metavar": FLAGS.get(name, name).upper()}
        inner, optional = _optional(tp)
        if name == "model_options":
            kw.update(action="append", type=_typed(parse_option, "option"), metavar="KEY=VALUE")
        elif name == "classes":
            kw.update(type=str, metavar="CLASSES")
        elif name == "pretrained":
            kw.update(type=_pretrained, metavar="imagenet|FILE")
        elif inner is bool:
            kw.update(action=argparse.BooleanOptionalAction)
        elif inner is Path:
            kw.update(type=Path, metavar="PATH")
        elif inner in (int, float):
            kw.update(type=_number(inner, optional))
        elif inner is str:
            kw.update(type=str)
            if name in choices:
                kw.update(choices=choices[name])
        elif _is_names(inner):
            kw.update(type=_typed(parse_names, "names"), metavar="NAMES")
        elif _is_pair(inner):
            kw.update(type=_pair, metavar="LOW,HIGH")
        else:
            kw.update(type=_typed(lambda text, n=name: _json(text, flag(n)), "JSON"), metavar="JSON")
        g.add_argument(flag(name), required=default is dataclasses.MISSING, **kw)
    return p


def from_namespace(cls, args: argparse.Namespace):
    """The `cls` the parsed arguments describe; unspecified fields keep their defaults."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
    if "model_options" in values:
        values["model_options"] = dict(values["model_options"])
    if "classes" in values:
        values["classes"] = parse_classes(values["classes"]) if values["classes"] else None
    if "grad_clip" in values and not values["grad_clip"]:
        values["grad_clip"] = None  # 0 = off
    return cls(**values)


def from_args(cls, argv: list[str]):
    """Parse `argv` (the flags of `build_parser`) into a `cls`; raises `UsageError` or `ValueError`."""
    return from_namespace(cls, build_parser(cls).parse_args(list(argv)))


def to_args(config) -> list[str]:
    """The arguments that `from_args` turns back into `config` (fields at their default are left out)."""
    hints = _hints(type(config))
    out: list[str] = []
    for f in dataclasses.fields(config):
        name, value = f.name, getattr(config, f.name)
        default = _default(f)
        if default is not dataclasses.MISSING and _same(value, default):
            continue
        key = flag(name)
        inner, _ = _optional(hints[name])
        if name == "model_options":
            for k, v in value.items():
                out += [key, f"{k}={json.dumps(v)}"]
        elif name == "classes":
            if value is not None:
                out += [key, json.dumps([c.to_json() for c in value], ensure_ascii=False)]
        elif name == "pretrained":
            if value is not False:
                out += [key, "timm" if value is True else str(value)]
        elif name == "grad_clip" and value is None:
            out += [key, "0"]
        elif inner is bool:
            out.append(key if value else "--no-" + key[2:])
        elif value is None:
            out += [key, "none"]
        elif inner is Path:
            out += [key, str(value)]
        elif inner in (int, float):
            out += [key, repr(inner(value))]
        elif inner is str:
            out += [key, value]
        elif _is_names(inner):
            out += [key, _write_names(value)]
        elif _is_pair(inner):
            out += [key, f"{float(value[0])!r},{float(value[1])!r}"]
        else:
            out += [key, json.dumps(value)]
    return out


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _same(value, default) -> bool:
    if isinstance(value, bool) or isinstance(default, bool):
        return type(value) is type(default) and value == default
    return value == default
