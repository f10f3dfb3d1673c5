"""Visit-time metrics: pure definitions over event logs (visit.py) and aggregates (stats.py)."""
