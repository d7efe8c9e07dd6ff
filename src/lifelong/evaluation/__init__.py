"""Evaluation: the accuracy matrix, metrics as pure functions of it, and the evaluator."""
