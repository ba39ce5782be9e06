"""The pipeline verbs: generate, sample, fit and run (every step, resumable)."""
