"""Editing one image's labels: the document and its undo history, paint atoms, the tools as array functions and as
mouse gestures, and the paint guard every tool write passes."""
