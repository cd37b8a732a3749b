"""How long reading image sizes takes when a project opens: 20 PNGs and 20 JPEGs of 4096 x 3072.

`engine.image_size` reads headers only; the "full decode" row is what the size read cost before
(Pillow's `getexif()` on a PNG decodes the whole image to look for EXIF after the pixels).

    python -m bench.image_size [--n 20]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from engine.images import image_size


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--size", default="4096x3072")
    args = parser.parse_args(argv)
    w, h = (int(v) for v in args.size.split("x"))
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        base = rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
        for i in range(args.n):
            im = Image.fromarray(np.roll(base, i, axis=1))
            im.save(folder / f"img{i:02d}.png", compress_level=1)
            im.save(folder / f"img{i:02d}.jpg", quality=90)
        print(f"| files ({args.n} x {w}x{h}) | how | seconds |")
        print("|---|---|---|")
        for ext in ("png", "jpg"):
            files = sorted(folder.glob(f"*.{ext}"))
            t0 = time.perf_counter()
            for f in files:
                assert image_size(f) == (h, w)
            t1 = time.perf_counter()
            for f in files:
                with Image.open(f) as im:
                    im.getexif()
            t2 = time.perf_counter()
            print(f"| {ext} | engine.image_size (header only) | {t1 - t0:.3f} |")
            print(f"| {ext} | Image.open + getexif (the old size read) | {t2 - t1:.3f} |")


if __name__ == "__main__":
    main()
