"""Command-line programs of the engine: `segassist-predict`, `segassist-export`."""
