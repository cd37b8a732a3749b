"""The images every model version is scored on: only ever grown, new members the most recently reviewed.

A member stays a member while it is a candidate (a reviewed image), so the before and after scores
of one fine-tune, and of the next, are measured on the same images. New members are taken until the set
holds at least `minimum` images or `fraction` of the candidates: in the loop the newest candidates
(`recent_first`, the candidates given oldest first), so that the set spans the labelling order instead of
its first images. Measured with the simulated annotator on camvid-mini (README, "Tuning the loop"): a set
topped up by a hash of the file name held, at 15 reviewed images, 3 of the first 5 (the first street), and
the first fine-tune, better by a quarter on the next street, was rejected on them. Without `recent_first`
(label import's split) new members are the candidates of lowest hash of the file name.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable

FRACTION = 0.15
MINIMUM = 2


def name_hash(name: str) -> float:
    """A number in [0, 1) fixed by the file name alone."""
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def wanted(n_candidates: int, *, fraction: float = FRACTION, minimum: int = MINIMUM) -> int:
    """How many validation images `n_candidates` reviewed images call for."""
    return min(n_candidates, max(minimum, math.ceil(fraction * n_candidates)))


def leaves_enough_to_train(labelled: int, validation: int) -> bool:
    """Whether a run validating on `validation` of `labelled` images trains on at least as many: with 3
    labelled images 2 cannot validate (1 would train), so none does until a 4th is labelled."""
    return labelled - validation >= validation


def pick_validation(candidates: Iterable[str], current: Iterable[str] = (), *, fraction: float = FRACTION,
                    minimum: int = MINIMUM, excluded: Iterable[str] = (), recent_first: bool = False) -> list[str]:
    """The validation names: the `current` ones still among `candidates`, topped up by hash order, or with
    `recent_first` by the candidates' own order from its end (the newest of candidates given oldest first).

    `excluded` names (ones the person took out) are dropped and never added. The result is sorted by name.
    """
    pool = list(dict.fromkeys(candidates))
    out = set(excluded)
    kept = (set(current) & set(pool)) - out
    skip = out | kept
    need = wanted(len(pool), fraction=fraction, minimum=minimum) - len(kept)
    if need > 0:
        fresh = [n for n in pool if n not in skip]
        fresh = fresh[::-1] if recent_first else sorted(fresh, key=lambda n: (name_hash(n), n))
        kept.update(fresh[:need])
    return sorted(kept)
