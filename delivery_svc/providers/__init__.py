"""One module per provider, each behind the small protocols of :mod:`.base`."""
