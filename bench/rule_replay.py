"""The loop's selection rule replayed on recorded trainings, with its own constants or others.

Every run of the simulated annotator (`bench.annotator`) records in its `trainings.csv` what each training's
validation said (the new version's and its parent's wrong pixels, image by image) and what hindsight said
(the boundary pixels each version would have cost on the next images). The rule's decision on one training
does not depend on the others', so it can be replayed on those records with other constants
(`app.core.loop.adoption.judge`'s keywords) and scored against the same hindsight, without training again:

    python -m bench.rule_replay out/Q2-recent-validation out/G2-first5-flip ...
    python -m bench.rule_replay --margin 0.1 --margin 0.25 --z 1.645 --z 2.326 out/*/

One row per combination: how often the rule agreed with hindsight, the boundary pixels lost where it did
not, and, as references, the recorded decisions and "always adopt". A row's decisions differ from the
recorded ones only where the constants differ (the row with the rule's own constants reproduces them: its
last column, "as recorded", says so). Which chain of versions a different decision would have led to is not replayed:
the trainings after it would have had another parent. Each training's numbers, one row each:
`python -m bench.annotator_table --trainings RUN ...`.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.core.loop import adoption
from bench.annotator import lost_px
from bench.annotator_table import done_event, read_rows
from training.events import DoneEvent


@dataclass(frozen=True)
class Recorded:
    """One judged training of a recorded run."""

    version: str
    adopted: bool  # what the rule decided when the run was made
    done: DoneEvent  # what the run's validation said, as `adoption.judge` reads it
    new_px: int  # hindsight: boundary px of the new version on the next images
    parent_px: int
    manual_px: int

    def lost(self, adopt: bool) -> int:
        """Boundary px the decision `adopt` costs over the better of the two versions (0: it agreed)."""
        return lost_px(self.new_px, self.parent_px, adopted=adopt)


def read_run(folder: Path) -> Iterator[Recorded]:
    """The trainings of a run folder that have both a parent score and a hindsight verdict."""
    path = folder / "trainings.csv"
    if not path.is_file():
        raise SystemExit(f"{path}: no trainings.csv (not a bench.annotator output folder)")
    for row in read_rows(path):
        if not row.get("hindsight_new_px") or not row.get("hindsight_parent_px") or row.get("error"):
            continue
        try:
            yield Recorded(row["version"], row["adopted"] == "True", done_event(row),
                           int(row["hindsight_new_px"]), int(row["hindsight_parent_px"]),
                           int(row["hindsight_manual_px"] or 0))
        except (KeyError, ValueError) as e:
            raise SystemExit(f"{path}: training {row.get('version', '?')}: unreadable record ({e})") from e


def score(records: Sequence[Recorded], decisions: Sequence[bool]) -> tuple[int, int]:
    """(trainings where the decision agreed with hindsight, boundary px lost where it did not)."""
    lost = [r.lost(d) for r, d in zip(records, decisions, strict=True)]
    return sum(x == 0 for x in lost), sum(lost)


def table(records: Sequence[Recorded], margins: Sequence[float], zs: Sequence[float], prior_sds: Sequence[float],
          prior_images: Sequence[int]) -> list[str]:
    n = len(records)
    manual = sum(r.manual_px for r in records)

    def line(name: str, decisions: Sequence[bool]) -> str:
        agreed, lost = score(records, decisions)
        same = sum(d == r.adopted for r, d in zip(records, decisions, strict=True))
        return (f"| {name} | {agreed}/{n} | {lost} | {lost / max(manual, 1):.4f} | {sum(decisions)}/{n} "
                f"| {same}/{n} |")

    lines = ["| rule | agreed with hindsight | boundary px lost | of drawing the judged images | adopted "
             "| as recorded |", "|---|---|---|---|---|---|",
             line("recorded decisions", [r.adopted for r in records]),
             line("always adopt", [True] * n)]
    for margin, z, sd, k in itertools.product(margins, zs, prior_sds, prior_images):
        decisions = [adoption.judge(r.done, margin=margin, z=z, prior_sd=sd, prior_images=k).adopt for r in records]
        lines.append(line(f"margin {margin:g}, z {z:g}, prior sd {sd:g} x {k}", decisions))
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rule_replay", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="bench.annotator output folders")
    parser.add_argument("--margin", type=float, action="append", help=f"default {adoption.MARGIN}")
    parser.add_argument("--z", type=float, action="append", help=f"default {adoption.Z}")
    parser.add_argument("--prior-sd", type=float, action="append", help=f"default {adoption.PRIOR_SD}")
    parser.add_argument("--prior-images", type=int, action="append", help=f"default {adoption.PRIOR_IMAGES}")
    args = parser.parse_args(argv)
    records = [r for folder in args.runs for r in read_run(folder)]
    if not records:
        print("no judged trainings in these runs", file=sys.stderr)
        return 1
    print("\n".join(table(records, args.margin or [adoption.MARGIN], args.z or [adoption.Z],
                          args.prior_sd or [adoption.PRIOR_SD], args.prior_images or [adoption.PRIOR_IMAGES])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
