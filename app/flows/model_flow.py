"""Choosing the model: open, create, import, select a version, export; and asking it why (attention).

The flow gets its dependencies explicitly (the editor, which holds the project; the model service; a
widget to parent its dialogs) and reports through signals; the window wires them to its panels.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.core.loop.class_match import ClassMatch, match_classes
from app.services.model_service import ActiveModel
from app.widgets.new_model_dialog import NewModelDialog


class ModelFlow(QObject):
    """What the model panel and menu ask for, done with the `ModelService`."""

    message = Signal(str, int)       # a line for the status bar, and for how long (ms; 0 = until replaced)
    failed = Signal(str, str)        # (title, text) worth a message box
    modelShown = Signal(object)      # the active model's info (name, arch, backbone, device, ...), or None
    versionsChanged = Signal(list, object)  # the project's model versions and the current one
    classesChanged = Signal()        # the project's classes changed (the model's were adopted)
    attentionCleared = Signal()      # the explanation on screen no longer applies
    explaining = Signal(str)         # an explanation is being computed (what for)
    explained = Signal(dict, object, str, tuple)  # maps, the image crop they cover, a caption, the pixel
    attentionShown = Signal(object, tuple)  # one map and its origin (y, x) to draw on the canvas
    fineTuneRequested = Signal()     # the person chose to fine-tune a copy with the project's classes
    enabledChanged = Signal()

    def __init__(self, editor, models, dialog_parent, parent: QObject | None = None):
        super().__init__(parent)
        self.editor, self.models, self.dialog_parent = editor, models, dialog_parent
        self.attention: tuple[dict, tuple] | None = None  # (maps, region) of the last explanation
        self._tables: dict[tuple, np.ndarray] = {}  # (model, project classes) -> the person's choice
        self.class_question: QMessageBox | None = None
        models.changed.connect(self._on_changed)
        models.failed.connect(self._on_failed)

    @property
    def project(self):
        return self.editor.project

    def _say(self, text: str, ms: int = 6000) -> None:
        self.message.emit(text, ms)

    # -- which model ----------------------------------------------------------------------------------
    def next_path(self, stem: str) -> Path:
        project = self.project
        path = project.next_model_path(stem) if project is not None else Path(f"{stem}.safetensors")
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def open(self, path: str | Path, remember: bool = True, then=None) -> None:
        """Load a model file in the background; the current model stays until it is ready."""
        path = Path(path)
        self._say(f"Loading {path.name}…", 0)

        def loaded(active: ActiveModel) -> None:
            if remember and self.project is not None:
                self.remember(path, active)
            if then is not None:
                then(active)

        self.models.load(path, on_loaded=loaded)

    def remember(self, path: Path, active: ActiveModel) -> None:
        """Make `path` the project's current model (a new version when it is not listed yet). A read-only
        project is not written: the model is only in use."""
        project = self.project
        if project.read_only and project.write_folder is None:
            return
        try:
            if any(Path(v.path).resolve() == path.resolve() for v in project.models):
                project.set_current_model(path)
            else:
                cfg = active.loaded.model.config
                project.add_model_version(path, arch=cfg.get("name"), backbone=cfg.get("backbone"),
                                          miou=active.info().get("miou"), val_images=active.info().get("val_images"))
        except OSError as exc:
            self.failed.emit("Project not saved", f"Could not record the model in segassist.json: {exc}")
        self.refresh_versions()

    def refresh_versions(self) -> None:
        project = self.project
        if project is not None:
            self.versionsChanged.emit(list(project.models), project.current_model)

    def _on_changed(self, active: ActiveModel | None) -> None:
        if active is None:  # put away: another project opens
            self.attention = None
            self.close_class_question()
            self.attentionCleared.emit()
            self.modelShown.emit(None)
            self.enabledChanged.emit()
            return
        info = active.info()
        self.modelShown.emit(info)
        self._say(f"Model {info['name']} ready ({info['arch']}, {info['backbone']}, on {info['device']})")
        self.attentionCleared.emit()  # the old model's explanation no longer applies
        self.attention = None
        self.refresh_versions()
        self.enabledChanged.emit()
        self.close_class_question()  # it asked about the model before this one
        if self.project is not None and self.class_table() is None:
            self.ensure_classes()

    def close_class_question(self) -> None:
        if self.class_question is not None:
            box, self.class_question = self.class_question, None
            box.close()

    # -- the model's classes against the project's ----------------------------------------------------
    def class_match(self) -> ClassMatch | None:
        active, project = self.models.active, self.project
        if active is None or project is None:
            return None
        return match_classes(active.classes, project.classes)

    def _key(self) -> tuple:
        active = self.models.active
        return (str(active.path) if active.path else id(active), tuple(c.name for c in self.project.classes))

    def class_table(self) -> np.ndarray | None:
        """Model index -> project index for the active model's proposals; None until the person has chosen
        how to use a model whose classes differ from the project's."""
        match = self.class_match()
        if match is None:
            return None
        if match.same:
            return match.by_index()
        return self._tables.get(self._key())

    def ensure_classes(self, then=None) -> None:
        """Call `then()` once the active model's classes fit the project's: at once when they are the same
        (or the person has chosen already), else after asking: use the model's classes, map by name, or
        fine-tune a copy with the project's classes."""
        if self.class_table() is not None:
            if then is not None:
                then()
            return
        match = self.class_match()
        if match is None:
            return
        self.close_class_question()
        box = QMessageBox(QMessageBox.Icon.Question, "The model's classes differ",
                          match.describe() + "\n\nHow should its proposals be used?", QMessageBox.StandardButton.Cancel,
                          self.dialog_parent)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        adopt = box.addButton("Use the model's classes", QMessageBox.ButtonRole.AcceptRole)
        adopt.setToolTip("Give the project the model's class names and colours (only before labelling)")
        by_name = box.addButton("Map by name", QMessageBox.ButtonRole.AcceptRole)
        by_name.setToolTip("Show the model's classes as the project's classes of the same name; others are left out")
        tune = box.addButton("Fine-tune a copy…", QMessageBox.ButtonRole.AcceptRole)
        tune.setToolTip("Train a copy of the model on this project's labels, with the project's classes")
        can_tune = len(match.project) >= len(match.model)
        tune.setEnabled(can_tune)
        if not can_tune:
            tune.setToolTip("Fine-tuning keeps the model's classes and adds new ones: the project has fewer")
        key = self._key()

        def answered(button) -> None:
            self.class_question = None
            if button is adopt:
                if self.adopt_classes() and then is not None:
                    then()
            elif button is by_name:
                self._tables[key] = match.by_name()
                self._say("Proposals show the model's classes under the project's classes of the same name")
                if then is not None:
                    then()
            elif button is tune:
                self.fineTuneRequested.emit()

        box.buttonClicked.connect(answered)
        self.class_question = box
        self._say(match.describe(), 20000)
        box.open()

    def _on_failed(self, why: str) -> None:
        prev = self.models.active
        keep = f"\n\nThe model in use stays {prev.info()['name']}." if prev else ""
        self.failed.emit("Model not loaded", why + keep)
        self.enabledChanged.emit()

    def adopt_classes(self) -> bool:
        """Make the project's classes the active model's (names and colours, in the model's order).

        Refused when labels already use a class whose name would change: relabelling is not guessed."""
        active, project = self.models.active, self.project
        if active is None or project is None:
            return False
        model_classes, mine = active.classes, list(project.classes)
        changed = [i for i, c in enumerate(mine) if i >= len(model_classes) or c.name != model_classes[i].name]
        if changed and project.labelled():
            self.failed.emit("Classes kept", "Labels already use the project's classes, and the model numbers them "
                             f"differently ({', '.join(mine[i].name for i in changed[:5])}…). Rename or add classes "
                             "by hand instead.")
            return False
        if len(mine) > len(model_classes):
            self.failed.emit("Classes kept", f"The project has more classes ({len(mine)}) than the model "
                             f"({len(model_classes)}).")
            return False
        try:
            for i, c in enumerate(model_classes):
                if i < len(mine):
                    if mine[i].name != c.name:
                        project.rename_class(i, c.name)
                    project.recolor_class(i, tuple(c.color))
                else:
                    project.add_class(c.name, tuple(c.color))
        except (ValueError, OSError) as exc:
            self.failed.emit("Classes not changed", str(exc))
            return False
        self.classesChanged.emit()
        self._say(f"The project now has the model's {len(project.classes)} classes")
        return True

    def settings_changed(self, settings: dict) -> None:
        if self.models.set_options(settings) is not None:
            self._say("Preparing the model for the new settings…", 0)

    def ask_new(self) -> None:
        if self.project is None:
            self._say("Open a project first")
            return
        dialog = NewModelDialog(self.project.classes, self.dialog_parent)
        if dialog.exec():
            v = dialog.values()
            self.new(v["arch"], v["backbone"], pretrained=v["pretrained"])

    def new(self, arch: str, backbone: str | None, pretrained=False, **options) -> None:
        path = self.next_path(arch)
        self._say(f"Creating a new {arch} model…", 0)
        self.models.create(arch, backbone, list(self.project.classes), path, pretrained=pretrained,
                             on_created=lambda active: self.remember(path, active), **options)

    def ask_open(self) -> None:
        start = str(self.project.models_dir if self.project is not None else Path.cwd())
        path, _ = QFileDialog.getOpenFileName(self.dialog_parent, "Open a model", start,
                                              "SegAssist models (*.safetensors)")
        if path:
            self.open(path)

    def ask_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.dialog_parent, "Import an mmsegmentation checkpoint",
                                              self.editor.start_folder(),
                                              "Checkpoints (*.pth *.pt *.ckpt);;All files (*)")
        if path:
            self.import_mmseg(Path(path))

    def import_mmseg(self, source: Path) -> None:
        out = self.next_path(source.stem.split(".")[0][:40] or "imported")
        self._say(f"Importing {source.name}…", 0)
        self.models.import_mmseg(source, out, on_imported=lambda active: self.remember(out, active)
                                   if self.project is not None else None)

    def ask_export_onnx(self) -> None:
        active = self.models.active
        if active is None:
            return
        default = str((active.path or Path(self.editor.start_folder()) / "model").with_suffix(".onnx"))
        path, _ = QFileDialog.getSaveFileName(self.dialog_parent, "Export the model to ONNX", default, "ONNX (*.onnx)")
        if path:
            self.export_onnx(Path(path))

    def export_onnx(self, path: Path) -> None:
        self._say("Exporting to ONNX…", 0)
        self.models.export_onnx(path, on_result=lambda p: self._say(f"Exported {p}"),
                                  on_failed=lambda msg: self.failed.emit("ONNX export failed", msg))

    # -- attention ------------------------------------------------------------------------------------
    def explain_at(self, pixel: tuple[int, int]) -> None:
        doc = self.editor.doc
        if doc is None:
            return
        if self.models.active is None:
            self._say("Attention needs a model: open or train one first")
            return
        self.explaining.emit(f"Explaining pixel x {pixel[1]}, y {pixel[0]}…")
        self.models.explain(doc.image, pixel, on_result=lambda r: self._show_explanation(doc, pixel, *r),
                            on_failed=lambda msg: self.explaining.emit(f"Could not explain: {msg}"))

    def _show_explanation(self, doc, pixel, maps: dict, region: tuple) -> None:
        if doc is not self.editor.doc:
            return  # the person moved on to another image
        y0, x0, y1, x1 = region
        fitted = {}
        for key, m in maps.items():
            if m.ndim != 2:
                continue
            if m.shape != (y1 - y0, x1 - x0):
                m = cv2.resize(m, (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
            fitted[key] = m
        self.attention = (fitted, region)
        names = [c.name for c in self.models.active.classes]
        cls = int(doc.proposal[pixel]) if doc.proposal is not None else None
        what = f" (proposal: {names[cls]})" if cls is not None and cls < len(names) else ""
        self.explained.emit(fitted, doc.image[y0:y1, x0:x1], f"Pixel x {pixel[1]}, y {pixel[0]}{what}: "
                            f"{len(fitted)} maps", tuple(pixel))

    def show_attention_map(self, key: str) -> None:
        if self.attention is None or key not in self.attention[0]:
            return
        maps, (y0, x0, _, _) = self.attention
        self.attentionShown.emit(maps[key], (y0, x0))
