"""Datasets: the on-disk format, the multi-view index, and (later) real-data converters."""
