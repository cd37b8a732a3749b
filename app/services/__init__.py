"""The long-lived objects the flows share: the editing session (`Editor`), the model's worker thread
(`ModelService`), the training child process, background jobs, and `segassist.json` written off the GUI thread."""
