"""JSUB-style user tasks: YAML task files, splitters, submission to the dispatcher or locally."""
