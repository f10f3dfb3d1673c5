"""Importers: turn data a city receives from other services into answers documents (pure; no DB)."""
