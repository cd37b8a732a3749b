"""How long the paths that must stay short take: the figures the tests once bounded by the clock.

    python -m bench.limits            # every row
    python -m bench.limits --quick    # smaller inputs, fewer files

The tests check the behaviour (the error, the cancel, the exit); this prints the time each took here:
- closing the window while a model load never returns: the whole `segassist` process, start to exit
  (the test's bound was 30 s), and the app's own wait for the stuck job;
- the class-name check on 15k, 30k and 60k names (linear time; the bound was 2 s for 60k);
- the ImageNet-weights errors: offline without the file, a hub that cannot be reached, and a download
  cancelled half-way through a held response (the bounds were 5 s);
- loading fuzzed model files, images and label PNGs: the slowest file of each kind (the bound was 10 s
  per model file);
- the peak-memory meter of the benchmarks (`bench.memory.peak_memory`) on a 16 MiB temporary.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from bench.timing import table

ROOT = Path(__file__).resolve().parents[1]

# A `segassist` process whose model load never returns (and never checks for cancel); its window is closed
# 0.8 s after it opened. argv: project folder, model file.
STUCK_LOAD_CHILD = """
import sys, time
from PySide6.QtCore import QTimer
import engine
import app.cli as cli

def stuck_load(path, **kwargs):  # a load (or warm-up) that never ends and never checks for cancel
    while True:
        time.sleep(0.05)

engine.load_model = stuck_load
real_open = cli.open_window

def open_window(*args, **kwargs):
    window, shot = real_open(*args, **kwargs)
    window.open_model(sys.argv[2])
    QTimer.singleShot(800, window.close)
    return window, shot

cli.open_window = open_window
sys.exit(cli.main([sys.argv[1]]))
"""


def run_stuck_load_child(folder: Path, model: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    """Run `STUCK_LOAD_CHILD` on a project folder and a model file, offscreen."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run([sys.executable, "-c", STUCK_LOAD_CHILD, str(folder), str(model)], cwd=ROOT,
                          timeout=timeout, env=env, capture_output=True, text=True)


def close_during_stuck_load(folder: Path) -> list[list[object]]:
    import engine

    project = folder / "project"
    project.mkdir()
    engine.write_image(project / "a.png", np.zeros((32, 48, 3), np.uint8))
    model = folder / "model.safetensors"
    model.write_bytes(b"never read")
    start = time.perf_counter()
    child = run_stuck_load_child(project, model)
    seconds = time.perf_counter() - start
    said = "did not finish; exiting without waiting" in child.stderr
    return [["segassist: open, stuck load, close, exit", seconds, f"exit {child.returncode}, said so: {said}"]]


def class_names(quick: bool) -> list[list[object]]:
    from engine.classes import as_classes

    rows = []
    for n in (5_000, 10_000, 20_000) if quick else (15_000, 30_000, 60_000):
        names = [f"c{i}" for i in range(n)]
        start = time.perf_counter()
        as_classes(names)
        rows.append([f"as_classes, {n:,} names", time.perf_counter() - start, ""])
    return rows


def hub_errors(folder: Path) -> list[list[object]]:
    """The three ImageNet-weights paths against an empty offline cache and a stand-in hub on 127.0.0.1."""
    from huggingface_hub import constants

    from tests.hub_cache import hub_environment

    env = hub_environment(folder / "cache")
    saved_env = {k: os.environ.get(k) for k in env}
    saved = constants.HF_HOME, constants.HF_HUB_CACHE, constants.HF_HUB_OFFLINE
    os.environ.update(env)
    constants.HF_HOME, constants.HF_HUB_CACHE, constants.HF_HUB_OFFLINE = env["HF_HOME"], env["HF_HUB_CACHE"], True
    try:
        return _hub_rows(Path(env["HF_HUB_CACHE"]))
    finally:
        constants.HF_HOME, constants.HF_HUB_CACHE, constants.HF_HUB_OFFLINE = saved
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _hub_rows(cache: Path) -> list[list[object]]:
    from huggingface_hub import constants

    import engine
    from engine.pretrained import PretrainedUnavailable, download_pretrained
    from tests.hub_cache import FakeHub, hub_repo, random_weights

    cache.mkdir(parents=True)
    rows = []
    start = time.perf_counter()
    try:
        engine.create_model("deeplabv3plus", 3, backbone="test_resnet", pretrained=True)
        outcome = "loaded (unexpected)"
    except PretrainedUnavailable:
        outcome = "PretrainedUnavailable"
    rows.append(["ImageNet weights offline, not cached", time.perf_counter() - start, outcome])

    constants.HF_HUB_OFFLINE = False
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    start = time.perf_counter()
    try:
        download_pretrained("test_resnet", endpoint=f"http://127.0.0.1:{closed}")
        outcome = "downloaded (unexpected)"
    except PretrainedUnavailable:
        outcome = "PretrainedUnavailable"
    rows.append(["hub unreachable (closed port)", time.perf_counter() - start, outcome])

    from safetensors.torch import save

    hub = FakeHub(*hub_repo("test_resnet"), save(random_weights("test_resnet")))
    hub.hold = True
    stop = threading.Event()
    threading.Thread(target=lambda: (hub.half_sent.wait(30), stop.set()), daemon=True).start()
    start = time.perf_counter()
    try:
        download_pretrained("test_resnet", endpoint=hub.url, should_stop=stop.is_set)
        outcome = "downloaded (unexpected)"
    except engine.Cancelled:
        outcome = "Cancelled"
    rows.append(["download cancelled half-way (server holding)", time.perf_counter() - start, outcome])
    hub.close()
    return rows


def _mutations(data: bytes, rng: np.random.Generator, n: int):
    """Truncations and bit flips of `data`."""
    for i in range(n):
        b = bytearray(data)
        if i % 2 == 0:
            b = b[: int(rng.integers(0, len(b)))]
        else:
            for _ in range(int(rng.integers(1, 8))):
                b[int(rng.integers(0, len(b)))] ^= 1 << int(rng.integers(0, 8))
        yield bytes(b)


def fuzzed_files(folder: Path, quick: bool) -> list[list[object]]:
    """The slowest of `n` mutated files of each kind to load (or to be refused)."""
    import engine
    from engine.images import read_image, read_label, write_image, write_label
    from engine.registry import architecture_class

    n = 20 if quick else 100
    rng = np.random.default_rng(0)
    model = folder / "m.safetensors"
    engine.save_model(model, engine.create_model("deeplabv3plus", 2, **architecture_class("deeplabv3plus").test_config),
                      classes=["a", "b"])
    image, label = folder / "i.png", folder / "l.png"
    write_image(image, rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))
    write_label(label, rng.integers(0, 3, (240, 320), dtype=np.uint8))
    kinds = {"model files": (model, engine.load_model), "images (PNG)": (image, read_image),
             "label PNGs": (label, lambda p: read_label(p, 3))}
    rows = []
    for kind, (seed, load) in kinds.items():
        worst, refused = 0.0, 0
        for i, bad in enumerate(_mutations(seed.read_bytes(), rng, n)):
            path = folder / f"bad{i}{seed.suffix}"
            path.write_bytes(bad)
            start = time.perf_counter()
            try:
                load(path)
            except Exception:  # each loader's documented error; which one is the tests' business
                refused += 1
            worst = max(worst, time.perf_counter() - start)
        rows.append([f"fuzzed {kind}: slowest of {n}", worst, f"{refused} refused"])
    return rows


def memory_meter() -> list[list[object]]:
    import torch

    from bench.memory import peak_memory

    def work():
        big = torch.ones(4 * 2**20)  # 16 MiB, freed before returning
        return float(big.sum())

    start = time.perf_counter()
    peak, _ = peak_memory(work)
    return [["peak_memory of a 16 MiB temporary", time.perf_counter() - start, f"{peak / 2**20:.1f} MiB seen"]]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller inputs and fewer fuzzed files")
    parser.add_argument("--skip-window", action="store_true", help="leave out the segassist process row")
    args = parser.parse_args(argv)
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory(prefix="segassist-limits-") as tmp:
        folder = Path(tmp)
        parts = [("names", lambda: class_names(args.quick)), ("hub", lambda: hub_errors(folder / "hub")),
                 ("fuzz", lambda: fuzzed_files(folder, args.quick)), ("memory", memory_meter)]
        if not args.skip_window:
            parts.insert(0, ("window", lambda: close_during_stuck_load(folder)))
        for _, part in parts:
            rows += part()
    print(f"\nseconds on this machine ({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})\n")
    print(table(["what", "seconds", "outcome"], rows))


if __name__ == "__main__":
    main()
