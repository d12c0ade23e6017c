"""DigestService."""
