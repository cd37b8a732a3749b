"""Choosing the model: open, create, import, select a version, export; and asking it why (attention)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.core.class_match import ClassMatch, match_classes
from app.model_service import ActiveModel
from app.widgets.new_model_dialog import NewModelDialog


class ModelFlow(QObject):
    """What the model panel and menu ask for, done with main window `w`'s `ModelService`."""

    def __init__(self, w):
        super().__init__(w)
        self.w = w
        self.attention: tuple[dict, tuple] | None = None  # (maps, region) of the last explanation
        self._tables: dict[tuple, np.ndarray] = {}  # (model, project classes) -> the person's choice
        self.class_question: QMessageBox | None = None
        w.models.changed.connect(self._on_changed)
        w.models.failed.connect(self._on_failed)

    # -- which model ----------------------------------------------------------------------------------
    def next_path(self, stem: str) -> Path:
        project = self.w.project
        path = project.next_model_path(stem) if project is not None else Path(f"{stem}.safetensors")
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def open(self, path: str | Path, remember: bool = True, then=None) -> None:
        """Load a model file in the background; the current model stays until it is ready."""
        path = Path(path)
        self.w.say(f"Loading {path.name}…", 0)

        def loaded(active: ActiveModel) -> None:
            if remember and self.w.project is not None:
                self.remember(path, active)
            if then is not None:
                then(active)

        self.w.models.load(path, on_loaded=loaded)

    def remember(self, path: Path, active: ActiveModel) -> None:
        """Make `path` the project's current model (a new version when it is not listed yet)."""
        project = self.w.project
        try:
            if any(Path(v.path).resolve() == path.resolve() for v in project.models):
                project.set_current_model(path)
            else:
                cfg = active.loaded.model.config
                project.add_model_version(path, arch=cfg.get("name"), backbone=cfg.get("backbone"),
                                          miou=active.info().get("miou"))
        except OSError as exc:
            self.w.warn("Project not saved", f"Could not record the model in segassist.json: {exc}")
        self.refresh_versions()

    def refresh_versions(self) -> None:
        project = self.w.project
        if project is not None:
            self.w.model_panel.set_versions(project.models, project.current_model)

    def _on_changed(self, active: ActiveModel) -> None:
        w = self.w
        info = active.info()
        w.model_panel.set_model(info)
        w.status_model.setText(f"{info['name']} · {info['device']}")
        w.say(f"Model {info['name']} ready ({info['arch']}, {info['backbone']}, on {info['device']})")
        w.training_panel.set_can_finetune(True)
        w.canvas.set_attention(None)  # the old model's explanation no longer applies
        w.canvas.set_marker(None)
        w.attention_panel.clear()
        self.attention = None
        self.refresh_versions()
        w.update_enabled()
        self.close_class_question()  # it asked about the model before this one
        if w.project is not None and self.class_table() is None:
            self.ensure_classes()

    def close_class_question(self) -> None:
        if self.class_question is not None:
            box, self.class_question = self.class_question, None
            box.close()

    # -- the model's classes against the project's ----------------------------------------------------
    def class_match(self) -> ClassMatch | None:
        active, project = self.w.models.active, self.w.project
        if active is None or project is None:
            return None
        return match_classes(active.classes, project.classes)

    def _key(self) -> tuple:
        active = self.w.models.active
        return (str(active.path) if active.path else id(active), tuple(c.name for c in self.w.project.classes))

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
        w = self.w
        box = QMessageBox(QMessageBox.Icon.Question, "The model's classes differ",
                          match.describe() + "\n\nHow should its proposals be used?", QMessageBox.StandardButton.Cancel,
                          w)
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
                w.say("Proposals show the model's classes under the project's classes of the same name")
                if then is not None:
                    then()
            elif button is tune:
                w.training_dock.raise_()
                w.training.start({**w.training_panel.settings(), "mode": "finetune"})

        box.buttonClicked.connect(answered)
        self.class_question = box
        w.say(match.describe(), 20000)
        box.open()

    def _on_failed(self, why: str) -> None:
        prev = self.w.models.active
        keep = f"\n\nThe model in use stays {prev.info()['name']}." if prev else ""
        self.w.warn("Model not loaded", why + keep)
        self.w.update_enabled()

    def adopt_classes(self) -> bool:
        """Make the project's classes the active model's (names and colours, in the model's order).

        Refused when labels already use a class whose name would change: relabelling is not guessed."""
        w = self.w
        active, project = w.models.active, w.project
        if active is None or project is None:
            return False
        model_classes, mine = active.classes, list(project.classes)
        changed = [i for i, c in enumerate(mine) if i >= len(model_classes) or c.name != model_classes[i].name]
        if changed and project.labelled():
            w.warn("Classes kept", "Labels already use the project's classes, and the model numbers them differently "
                   f"({', '.join(mine[i].name for i in changed[:5])}…). Rename or add classes by hand instead.")
            return False
        if len(mine) > len(model_classes):
            w.warn("Classes kept", f"The project has more classes ({len(mine)}) than the model "
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
            w.warn("Classes not changed", str(exc))
            return False
        w.editor.classes_changed()
        w.classes_panel.set_classes(project.classes)
        w.canvas.set_classes(project.classes)
        w.say(f"The project now has the model's {len(project.classes)} classes")
        return True

    def settings_changed(self, settings: dict) -> None:
        if self.w.models.set_options(settings) is not None:
            self.w.say("Preparing the model for the new settings…", 0)

    def ask_new(self) -> None:
        w = self.w
        if w.project is None:
            w.say("Open a project first")
            return
        dialog = NewModelDialog(w.project.classes, w)
        if dialog.exec():
            v = dialog.values()
            self.new(v["arch"], v["backbone"], pretrained=v["pretrained"])

    def new(self, arch: str, backbone: str | None, pretrained=False, **options) -> None:
        path = self.next_path(arch)
        self.w.say(f"Creating a new {arch} model…", 0)
        self.w.models.create(arch, backbone, list(self.w.project.classes), path, pretrained=pretrained,
                             on_created=lambda active: self.remember(path, active), **options)

    def ask_open(self) -> None:
        start = str(self.w.project.models_dir if self.w.project is not None else Path.cwd())
        path, _ = QFileDialog.getOpenFileName(self.w, "Open a model", start, "SegAssist models (*.safetensors)")
        if path:
            self.open(path)

    def ask_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.w, "Import an mmsegmentation checkpoint", self.w.start_folder(),
                                              "Checkpoints (*.pth *.pt *.ckpt);;All files (*)")
        if path:
            self.import_mmseg(Path(path))

    def import_mmseg(self, source: Path) -> None:
        out = self.next_path(source.stem.split(".")[0][:40] or "imported")
        self.w.say(f"Importing {source.name}…", 0)
        self.w.models.import_mmseg(source, out, on_imported=lambda active: self.remember(out, active)
                                   if self.w.project is not None else None)

    def ask_export_onnx(self) -> None:
        active = self.w.models.active
        if active is None:
            return
        default = str((active.path or Path(self.w.start_folder()) / "model").with_suffix(".onnx"))
        path, _ = QFileDialog.getSaveFileName(self.w, "Export the model to ONNX", default, "ONNX (*.onnx)")
        if path:
            self.export_onnx(Path(path))

    def export_onnx(self, path: Path) -> None:
        self.w.say("Exporting to ONNX…", 0)
        self.w.models.export_onnx(path, on_result=lambda p: self.w.say(f"Exported {p}"),
                                  on_failed=lambda msg: self.w.warn("ONNX export failed", msg))

    # -- attention ------------------------------------------------------------------------------------
    def explain_at(self, pixel: tuple[int, int]) -> None:
        w = self.w
        doc = w.editor.doc
        if doc is None:
            return
        if w.models.active is None:
            w.say("Attention needs a model: open or train one first")
            return
        w.attention_dock.raise_()
        w.attention_panel.set_busy(f"Explaining pixel x {pixel[1]}, y {pixel[0]}…")
        w.models.explain(doc.image, pixel, on_result=lambda r: self._show_explanation(doc, pixel, *r),
                         on_failed=lambda msg: w.attention_panel.set_busy(f"Could not explain: {msg}"))

    def _show_explanation(self, doc, pixel, maps: dict, region: tuple) -> None:
        w = self.w
        if doc is not w.editor.doc:
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
        w.canvas.set_marker(pixel)
        names = [c.name for c in w.models.active.classes]
        cls = int(doc.proposal[pixel]) if doc.proposal is not None else None
        what = f" (proposal: {names[cls]})" if cls is not None and cls < len(names) else ""
        w.attention_panel.set_maps(fitted, doc.image[y0:y1, x0:x1],
                                   f"Pixel x {pixel[1]}, y {pixel[0]}{what}: {len(fitted)} maps")

    def show_attention_map(self, key: str) -> None:
        if self.attention is None or key not in self.attention[0]:
            return
        maps, (y0, x0, _, _) = self.attention
        self.w.canvas.set_attention(maps[key], origin=(y0, x0))
