"""Generalized linear mixed models (lme4's ``glmer``): fitting and results."""

from .fitting import GeneralizedMixedProblem, assemble, fit, glmer
from .pql import PenalizedQuasiLikelihoodFit
from .results import GeneralizedLinearMixedModel

__all__ = [
    "GeneralizedLinearMixedModel",
    "GeneralizedMixedProblem",
    "PenalizedQuasiLikelihoodFit",
    "assemble",
    "fit",
    "glmer",
]
