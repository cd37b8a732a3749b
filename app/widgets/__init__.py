"""The dock panels and dialogs of the main window, each a thin view that emits signals and shows state, and the
icons they draw."""
