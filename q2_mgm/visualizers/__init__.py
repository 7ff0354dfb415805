"""Visualizers, one module each, rendered with q2templates."""
