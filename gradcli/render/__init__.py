"""Renderers: turn a Result into text (Rich table and tree, strict JSON)."""
