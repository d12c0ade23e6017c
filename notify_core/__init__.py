"""Shared runtime of every Notify service: configuration, backends, gRPC bootstrap, auth."""
