"""Inference for fitted linear mixed models: denominator degrees of freedom, tests and tables."""
