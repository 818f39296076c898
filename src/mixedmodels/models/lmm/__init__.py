"""The linear mixed model: fitting it as lme4's ``lmer`` does (:mod:`.fitting`: ``lmer``, ``assemble``,
``fit``) and its results (:mod:`.results`: :class:`LinearMixedModel`)."""

from .fitting import LinearMixedProblem, assemble, fit, lmer
from .results import LinearMixedModel

__all__ = ["LinearMixedModel", "LinearMixedProblem", "assemble", "fit", "lmer"]
