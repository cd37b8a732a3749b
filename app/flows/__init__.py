"""What the window's commands do: opening a project, the model, auto-segmenting, training, classes, label import
and export, the smart tools, the questions before quitting. A flow gets its dependencies explicitly and reports
through signals; the window wires them to its panels."""
