"""What a sampler run leaves: the saved draws of every parameter, with MCMCglmm's names.

MCMCglmm keeps the location effects (``Sol``: fixed effects, and the random effects when ``pr=TRUE``) and
the covariance matrices (``VCV``: each G structure's matrix in full, column-major, then the R structure's)
of every ``thin``-th iteration after ``burnin``; the deviance of each saved iteration gives the DIC.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["PosteriorDraws", "StructureColumns"]


@dataclass(frozen=True)
class StructureColumns:
    """One G or R structure: its kind, its label as MCMCglmm prints it, its columns in the VCV draws."""

    kind: str  # "G" or "R"
    label: str  # e.g. "~us(1 + Days):Subject", "~units", "~idh(sex):units"
    columns: slice  # into PosteriorDraws.variances' last axis


@dataclass(frozen=True)
class PosteriorDraws:
    """Saved draws of one or more chains; arrays are (chains, draws, ...) in iteration order."""

    fixed: np.ndarray  # (chains, draws, p)
    fixed_names: list[str]
    variances: np.ndarray  # (chains, draws, k): MCMCglmm's VCV columns
    variance_names: list[str]
    structures: list[StructureColumns]
    deviance: np.ndarray  # (chains, draws): -2 log p(y | location effects, R) of each saved iteration
    deviance_at_mean: float  # the same at the posterior means (DIC's D(theta-bar))
    nitt: int
    burnin: int
    thin: int
    random: np.ndarray | None = None  # (chains, draws, q) when the random effects are kept (pr=True)
    random_names: list[str] | None = None

    @property
    def nchains(self) -> int:
        return self.fixed.shape[0]

    @property
    def ndraws(self) -> int:
        """Draws per chain."""
        return self.fixed.shape[1]

    @property
    def iterations(self) -> np.ndarray:
        """The iteration number of each saved draw (MCMCglmm's ``burnin + 1 : nitt`` by ``thin``)."""
        return np.arange(self.burnin + 1, self.nitt + 1, self.thin)[: self.ndraws]
