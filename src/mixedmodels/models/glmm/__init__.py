"""Generalized linear mixed models (lme4's ``glmer``, ``glmer.nb``; glmmTMB's ``nbinom2``): fitting and
results."""

from .fitting import GeneralizedMixedProblem, assemble, fit, glmer
from .nbinom2 import NegativeBinomial2MixedModel
from .negbin import NegativeBinomialMixedModel, glmer_nb
from .pql import PenalizedQuasiLikelihoodFit
from .results import GeneralizedLinearMixedModel

__all__ = [
    "GeneralizedLinearMixedModel",
    "GeneralizedMixedProblem",
    "NegativeBinomial2MixedModel",
    "NegativeBinomialMixedModel",
    "PenalizedQuasiLikelihoodFit",
    "assemble",
    "fit",
    "glmer",
    "glmer_nb",
]
