"""Rehearsal buffers: tensor storage plus selection policies that are pure functions."""
