"""RouterService: turns an accepted notification into a plan, and acts on it."""
