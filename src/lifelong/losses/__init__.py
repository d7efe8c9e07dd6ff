"""Loss functions as small pure functions, grouped by theme."""
