"""Generative models: BI-R's VAE-classifier and its pre-trained conv encoder."""
