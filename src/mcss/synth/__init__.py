"""The embedded synthetic multi-view dataset: actors, rig, ray-cast renderer, generator."""
