"""SegAssist's Qt-free core: the label document, the editing tools, the project folder and the journal."""
