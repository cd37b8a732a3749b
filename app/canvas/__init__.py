"""The canvas: the `QGraphicsView` and its tiled layers, and the tools' side of the mouse (Qt events in, each
gesture's preview drawn; what a gesture does is `app.core.editing.gestures` and `app.core.smart.smart_gestures`)."""
