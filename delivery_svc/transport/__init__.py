"""How messages travel, apart from who carries them: MIME, the SSRF guard, guarded HTTP."""
