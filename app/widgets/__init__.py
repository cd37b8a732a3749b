"""The dock panels of the main window; each is a thin view that emits signals and shows state."""
