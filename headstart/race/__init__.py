"""The race's vocabulary: its configuration, fields, events, strategies, sources and wire messages; no torch."""
