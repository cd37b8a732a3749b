"""`Cancelled`: the one exception that stops work early when a person cancels it (engine and app alike)."""


class Cancelled(Exception):
    """Work stopped early because it was asked to stop (e.g. `Predictor.predict(should_stop=...)`)."""
