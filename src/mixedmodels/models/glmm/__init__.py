"""Generalized linear mixed models (lme4's ``glmer``, ``glmer.nb``): fitting and results."""

from .fitting import GeneralizedMixedProblem, assemble, fit, glmer
from .negbin import NegativeBinomialMixedModel, glmer_nb
from .pql import PenalizedQuasiLikelihoodFit
from .results import GeneralizedLinearMixedModel

__all__ = [
    "GeneralizedLinearMixedModel",
    "GeneralizedMixedProblem",
    "NegativeBinomialMixedModel",
    "PenalizedQuasiLikelihoodFit",
    "assemble",
    "fit",
    "glmer",
    "glmer_nb",
]
