"""Generative models: BI-R's VAE-classifier, its pre-trained conv encoder, shared replay pieces."""
