"""Markdown tables of simulated-annotator runs (`bench.annotator --out DIR`), side by side.

    python -m bench.annotator_table out/file-finetune out/uncertain-finetune ...   # one row per run
    python -m bench.annotator_table --blocks 10 out/file-finetune                   # one row per 10 images
    python -m bench.annotator_table --trainings out/file-finetune ...               # one row per training

A run's row: its order and strategy, the fine-tunes' length, the versions trained and adopted, the
wrong pixels of the proposals the person met, the ratio R of assisted to manual boundary pixels over
all images and over the model-assisted ones, R for a person who takes a proposal only where it saves
drawing (an image whose proposal costs more than labelling it by hand is labelled by hand), the boundary
tolerance and the final labels' pixel accuracy and mIoU against the truth, how often the selection rule
agreed with hindsight, and the training and wall times; with `--person tools`, R in the simulated person's
actions (assisted over by hand with polygons, and over by hand with the app's tools). A training's row: its
validation scores beside its parent's, the decision the run made and the one `app.core.loop.adoption.judge` makes
on the same numbers, and the effort each version cost (or would have cost) on the next images.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from app.core.loop.adoption import judge
from training.events import DoneEvent


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _ratio(images: list[dict]) -> float:
    manual = sum(int(r["manual_boundary_px"]) for r in images)
    return sum(int(r["boundary_px"]) for r in images) / manual if manual else float("nan")


def _skip_ratio(images: list[dict]) -> float:
    """R for a person who accepts a proposal only when it saves drawing (else labels that image by hand)."""
    manual = sum(int(r["manual_boundary_px"]) for r in images)
    best = sum(min(int(r["boundary_px"]), int(r["manual_boundary_px"])) for r in images)
    return best / manual if manual else float("nan")


def _actions(images: list[dict]) -> str:
    """R in actions against polygons by hand and against the tools by hand, or '-' without `--person tools`."""
    if not images or "actions" not in images[0]:
        return "- | -"
    spent = sum(int(r["actions"]) for r in images)
    polygons = sum(int(r["manual_polygon_actions"]) for r in images)
    by_tools = sum(int(r["manual_tool_actions"]) for r in images)
    return f"{spent / max(polygons, 1):.3f} | {spent / max(by_tools, 1):.3f}"


def _hindsight(summary: dict) -> str:
    h = summary.get("hindsight")
    return f"{h['agreed']}/{h['judged']} ({h['lost_px']} px lost)" if h else "-"


def _final(summary: dict) -> str:
    f = summary.get("final_labels")
    return f"{100 * f['pixel_accuracy']:.2f}% / {f['miou']:.3f}" if f else "-"


def run_row(folder: Path) -> str:
    summary = json.loads((folder / "summary.json").read_text())
    s = summary["settings"]
    images, trainings = read_rows(folder / "images.csv"), read_rows(folder / "trainings.csv")
    assisted = [r for r in images if r["model"] != "-"]
    wrong = sum(int(r["wrong_px"]) for r in assisted) / max(1, sum(int(r["labelled_px"]) for r in assisted))
    finetune = s.get("finetune_iters") or s.get("iters") or "auto"
    adopted = sum(t["adopted"] == "True" for t in trainings)
    return (f"| {folder.name} | {s['order']} | {s['strategy']} | {finetune if s['strategy'] == 'finetune' else '-'} "
            f"| {len(images)} | {len(trainings)} ({adopted}) | {100 * wrong:.1f}% | {_ratio(images):.3f} "
            f"| {_ratio(assisted):.3f} | {_skip_ratio(images):.3f} | {s.get('tolerance', 0)} | {_final(summary)} "
            f"| {_hindsight(summary)} | {summary['training_s'] / 60:.1f} | {summary['wall_s'] / 60:.1f} "
            f"| {_actions(images)} |")


RUN_HEADER = ("| run | order | strategy | fine-tune it. | images | trainings (adopted) | wrong px (assisted) "
              "| R all | R assisted | R accepting only helpful proposals | tolerance px "
              "| final labels: pixel acc. / mIoU | selection agreed with hindsight | training min | wall min "
              "| R actions vs polygons | R actions vs tools |\n"
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def done_event(t: dict) -> DoneEvent:
    """The numbers of a trainings.csv row as the run's done event had them."""
    def number(key):
        return float(t[key]) if t.get(key) not in (None, "", "None") else None

    def loaded(key, empty):
        return json.loads(t[key]) if t.get(key) else empty

    return DoneEvent(iteration=int(t["iterations"]), model_path=t["version"], best_path=None, best_miou=None,
                     last_miou=None, wall_time_s=float(t["wall_s"]), miou=number("miou"),
                     parent_miou=number("parent_miou"), val_names=loaded("val_names", []),
                     image_errors=loaded("image_errors", {}), parent_image_errors=loaded("parent_image_errors", {}))


def training_rows(folder: Path) -> list[str]:
    """One row per training of a run: the scores, the run's decision and the rule's, and hindsight."""
    out = ["| run | after | version | mIoU (parent) | val. images | wrong px x (parent stays beyond) | run adopted "
           "| rule adopts | next images: new px | parent px | manual px | better in hindsight |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for t in read_rows(folder / "trainings.csv"):
        if t["error"]:
            continue
        v = judge(done_event(t))
        parent = f" ({float(t['parent_miou']):.3f})" if t["parent_miou"] else ""
        miou = f"{float(t['miou']):.3f}{parent}" if t["miou"] else "-"
        ratio = f"{v.ratio:.2f} ({v.bound:.2f})" if v.paired else "-"
        new, old = t.get("hindsight_new_px") or "", t.get("hindsight_parent_px") or ""
        better = ("new" if int(new) < int(old) else "parent" if int(old) < int(new) else "same") if new and old \
            else "-"
        out.append(f"| {folder.name} | {t['after']} | {t['version']} | {miou} | {v.images} | {ratio} | {t['adopted']} "
                   f"| {v.adopt} | {new or '-'} | {old or '-'} | {t.get('hindsight_manual_px') or '-'} | {better} |")
    return out


def block_rows(folder: Path, size: int) -> list[str]:
    images = read_rows(folder / "images.csv")
    out = ["| images | proposal from | wrong pixels | assisted boundary px | manual boundary px | assisted/manual "
           "| actions assisted/polygons | actions assisted/tools |",
           "|---|---|---|---|---|---|---|---|"]
    for start in range(0, len(images), size):
        block = images[start:start + size]
        models = sorted({r["model"] for r in block})
        labelled = sum(int(r["labelled_px"]) for r in block)
        wrong = sum(int(r["wrong_px"]) for r in block) / max(1, labelled)
        sources = ", ".join(m if m != "-" else "none (by hand)" for m in models)
        out.append(f"| {start + 1}-{start + len(block)} | {sources} "
                   f"| {100 * wrong:.1f}% | {sum(int(r['boundary_px']) for r in block)} "
                   f"| {sum(int(r['manual_boundary_px']) for r in block)} | {_ratio(block):.3f} | {_actions(block)} |")
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", type=Path, nargs="+", help="folders written by bench.annotator --out")
    p.add_argument("--blocks", type=int, help="one row per this many images of each run instead")
    p.add_argument("--trainings", action="store_true", help="one row per training of each run instead")
    args = p.parse_args(argv)
    if args.trainings:
        rows = [row for folder in args.runs for row in training_rows(folder)]
        print("\n".join(rows[:2] + [r for r in rows if not r.startswith(("| run |", "|---"))]))
        return
    if args.blocks:
        for folder in args.runs:
            print(f"\n{folder.name}\n")
            print("\n".join(block_rows(folder, args.blocks)))
        return
    print(RUN_HEADER)
    for folder in args.runs:
        print(run_row(folder))


if __name__ == "__main__":
    main()
