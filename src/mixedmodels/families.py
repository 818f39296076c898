"""Families and links of generalized linear mixed models (``mm.families.Binomial(link="probit")``)."""

from .engine.families import (
    Binomial,
    Family,
    Gamma,
    Gaussian,
    InverseGaussian,
    NegativeBinomial,
    NegativeBinomial2,
    Poisson,
)

__all__ = [
    "Binomial",
    "Family",
    "Gamma",
    "Gaussian",
    "InverseGaussian",
    "NegativeBinomial",
    "NegativeBinomial2",
    "Poisson",
]
