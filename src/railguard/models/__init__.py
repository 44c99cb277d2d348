"""Encoders, heads and the shipped model artifacts."""
