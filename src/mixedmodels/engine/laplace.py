"""The objectives of a GLMM fit for an optimizer: the Laplace deviance over theta (nAGQ = 0) or over
(theta, beta) (nAGQ = 1), as lme4's ``mkGlmerDevfun``.

Each evaluation runs PIRLS (:class:`.pirls.Pirls`) and returns :func:`.deviance.laplace_deviance`.  Two
ways to run it:

* ``"lme4"`` (the default): as lme4's ``glmer``, each evaluation starts from the same linear predictor
  (``lp0``: the first PIRLS fit's for the nAGQ = 0 stage, that at its optimum for the nAGQ = 1 stage,
  :meth:`LaplaceObjective.restart_here`) and stops by lme4's ``tolPwrss = 1e-7`` rule with ``log|L|^2``
  at the weights before the last iteration.  This is the function lme4 optimizes, so its estimates
  agree with lme4's to the optimizer's precision; it differs from the exact Laplace deviance by up to
  ~1e-3 (and the optima by up to ~1e-4 relative).
* ``"exact"``: PIRLS converged to ~1e-9 in u from the last modes found (a warm start) and ``log|L|^2``
  at the final weights: the Laplace approximation itself, as MixedModels.jl evaluates it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .cholesky import BlockedCholesky
from .covariance import CovarianceStructure, ThetaLayout
from .deviance import ProfiledObjective, laplace_deviance
from .fit import at_boundary, fit_theta
from .optimize import FLAT_BOUNDARY_TOL, OptimizerControl
from .pirls import Pirls, PirlsError, PirlsFit

__all__ = ["CONVERGENCE", "LaplaceObjective"]

CONVERGENCE = ("lme4", "exact")
LME4_TOL_PWRSS = 1e-7  # glmerControl's tolPwrss
GAUSSIAN_START_CONTROL = OptimizerControl(check_convergence=False, restarts=0)  # a start, not an estimate
GAUSSIAN_START_MAX_BLOCK = 300


class LaplaceObjective(ThetaLayout):
    """theta -> Laplace deviance with beta from PIRLS (:meth:`fast`, lme4's nAGQ = 0), and (theta, beta)
    -> Laplace deviance with u from PIRLS (:meth:`laplace`, nAGQ = 1)."""

    def __init__(self, pirls: Pirls, covariances: Sequence[CovarianceStructure], convergence: str = "lme4"):
        super().__init__(covariances)
        self.pirls = pirls
        self.convergence = convergence
        self.start_etas: list[np.ndarray] | None = None  # lme4's lp0
        self._aic_of: tuple | None = None  # (family, its AIC term of these rows)
        self.last: PirlsFit | None = None  # the modes of the last evaluation, where the next one starts

    def modes(self, theta: np.ndarray, beta: np.ndarray | None = None) -> PirlsFit:
        """PIRLS at theta (u only at ``beta``; u and beta when None), from the last modes found."""
        lambdas = self.lambdas(np.asarray(theta, dtype=float))
        if self.convergence == "lme4":
            fit = self.pirls.solve(lambdas, beta, start_etas=self.start_etas, lme4_tol=LME4_TOL_PWRSS)
        else:
            fit = self.pirls.solve(lambdas, beta, self.last)
        self.last = fit
        return fit

    def gaussian_start(self) -> np.ndarray:
        """theta from the linear mixed model of IRLS's first working response and weights (at R's
        ``mustart``): its relative factors times its residual standard deviation, the random effects'
        scale on the link scale.  Near the optimum more often than lme4's T = I (MixedModels.jl fits
        an LMM first for the same reason), it saves BOBYQA evaluations, each a PIRLS run, for the
        price of one pass over the rows.  lme4's start where that model's optimum is on a bound, or
        where its factor has a dense block of order over :data:`GAUSSIAN_START_MAX_BLOCK` (crossed
        factors with many levels): there each of its evaluations costs about as much as a PIRLS run."""
        _, _, cross = self.pirls.at_start(self.pirls.mustart_etas)
        chol = BlockedCholesky(cross, self.pirls.nfixed)
        if chol.largest_dense_block > GAUSSIAN_START_MAX_BLOCK:
            return self.initial
        gaussian = ProfiledObjective(chol, self.covariances, reml=False)
        result, _ = fit_theta(gaussian, GAUSSIAN_START_CONTROL)
        if not np.all(np.isfinite(result.x)) or at_boundary(gaussian, result.x, FLAT_BOUNDARY_TOL):
            return self.initial
        gaussian.update(result.x)
        sigma = np.sqrt(gaussian.chol.pwrss() / cross.nobs)
        return np.where(self.is_scale, result.x * sigma, result.x)

    def restart_here(self, theta: np.ndarray, beta: np.ndarray | None = None) -> PirlsFit:
        """The modes at theta (and beta), whose linear predictor later evaluations start from in the
        ``"lme4"`` way (lme4's ``lp0``)."""
        fit = self.modes(theta, beta)
        self.start_etas = fit.etas
        return fit

    def _aic(self) -> Callable[[np.ndarray, float], float]:
        """The family's AIC term of all chunks' rows as a function of the means and the deviance, made
        once per family (glmmTMB's nbinom2 fit swaps the family's theta)."""
        family = self.pirls.family
        if self._aic_of is None or self._aic_of[0] is not family:
            names = ("y", "trials", "prior_weights")
            rows = [np.concatenate([getattr(c, name) for c in self.pirls.chunks]) for name in names]
            self._aic_of = (family, family.aic_of(*rows))
        return self._aic_of[1]

    def value(self, fit: PirlsFit, saturated: bool = False) -> float:
        """The Laplace deviance at PIRLS's modes: lme4's (``aic`` term) or, with ``saturated``, relative
        to the saturated model (the deviance residuals; MixedModels.jl's deviance)."""
        if saturated:
            term = fit.deviance
        else:
            mu = fit.mus[0] if len(fit.mus) == 1 else np.concatenate(fit.mus)
            term = self._aic()(mu, fit.deviance)
        return laplace_deviance(fit.chol.logdet_random(), fit.sqr_u, term)

    def fast(self, theta: np.ndarray) -> float:
        """nAGQ = 0: the Laplace deviance at theta, beta and u from PIRLS (inf where PIRLS fails)."""
        try:
            return self.value(self.modes(theta))
        except PirlsError:
            return np.inf

    def laplace(self, parameters: np.ndarray) -> float:
        """nAGQ = 1: the Laplace deviance at (theta, beta), u from PIRLS (inf where PIRLS fails)."""
        k = self.n_params
        try:
            return self.value(self.modes(parameters[:k], parameters[k:]))
        except PirlsError:
            return np.inf
