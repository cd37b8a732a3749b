"""SegAssist's Qt-free core, by role: `editing/` (the label document, its tools and gestures), `storage/` (the
project folder and everything written in it), `loop/` (the model loop's bookkeeping), `smart/` (the smart tools)
and `view/` (what the window shows, decided without Qt)."""
