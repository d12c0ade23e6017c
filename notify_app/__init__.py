"""The composition root: which services a process runs and how they are wired together."""
