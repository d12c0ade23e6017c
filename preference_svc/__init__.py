"""PreferenceService."""
