"""How many images the next training run trains and validates on, said before Train, with a warning when a
new model would train on too few to be useful. (Validation images are set aside only once at least
`validation_split.MINIMUM` reviewed ones leave as many to train on: see `LoopRecord.run_names`.)"""

from __future__ import annotations

from dataclasses import dataclass

# A new model trained on fewer images than this proposes little worth keeping (3 CamVid frames, 1 of them
# trained on, gave "tree" on every pixel): the panel says so before Train. From the bundled ImageNet weights
# three are enough to help: the simulated annotator's first model after 5 reviewed CamVid frames (3 trained
# on, 2 validating) cost 0.79 of drawing the next 5 by hand and 0.82 on the 5 after (README, "Tuning the
# loop"), so the panel does not hold a person back from training then.
FEW_TRAINING_IMAGES = 3


def _images(n: int) -> str:
    return f"{n} image" + ("" if n == 1 else "s")


@dataclass(frozen=True)
class RunImages:
    """The labelled images of the next run: `train` trained on, `validate` scored on (never trained on)."""

    train: int
    validate: int

    @classmethod
    def of(cls, labelled: int, validation: int) -> RunImages:
        return cls(max(labelled - validation, 0), validation)

    def too_few(self, new: bool) -> bool:
        """Whether a run would be of little use: nothing to train on, or a new model from very few images."""
        return self.train == 0 or (new and self.train < FEW_TRAINING_IMAGES)

    def text(self, new: bool) -> str:
        """One or two sentences for the Training panel."""
        if self.train == 0:
            return "Nothing to train on yet: label an image first."
        if self.validate:
            line = f"Trains on {_images(self.train)}, validates on {self.validate}."
        else:
            line = f"Trains on {_images(self.train)}; none validates yet, so this version gets no score."
        if self.too_few(new):
            line += f" Too few for a useful new model: label {FEW_TRAINING_IMAGES - self.train} more first."
        return line
