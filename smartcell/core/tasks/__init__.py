"""Shared human-robot work: recipes, scheduling, the job runner."""
