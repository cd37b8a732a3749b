"""The project on disk: the folder and `segassist.json`, label files, model versions, the lock, the recovery journal
and its replay, saving an edit, cached proposals, class edits that rewrite every label file, labels in and out."""
