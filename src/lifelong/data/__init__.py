"""Data: tensor-backed datasets, batched transforms and continual-learning scenarios."""
