"""Relational storage: the schema, the async engine wrapper and migrations."""
