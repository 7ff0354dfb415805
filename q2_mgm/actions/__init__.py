"""Thin QIIME 2 action functions, one module per area."""
