"""SegAssist's desktop app. By role: `window/` (the main window, its actions and look), `flows/` (what each command
does), `canvas/` (the image view and the tools' mouse handling), `widgets/` (panels and dialogs), `services/` (the
editing session, the model's thread, the training process, background jobs) and `core/` (everything Qt-free). The
command lines stay here: `cli.py` (`segassist`, `python -m app`) and `convert_cli.py` (`segassist-convert`)."""
