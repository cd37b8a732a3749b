"""The model loop's bookkeeping: what a training run trains and validates on, its plan, the rule that adopts its
model, the validation set, the effort a person spent per reviewed image, the time left, model classes by name."""
