"""RealtimeService: the in-app inbox, presence, and the WebSocket/REST edge."""
