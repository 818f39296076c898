"""The negative binomial GLMM as glmmTMB fits it (``family = nbinom2``).

glmmTMB's model is lme4's glmer.nb's (variance ``mu + mu^2 / theta``, log link), fitted another way:

* its Laplace approximation takes the curvature of the joint log-likelihood in the random effects
  exactly (TMB differentiates it), the observed information ``theta mu (theta + y) / (theta + mu)^2``
  per row, where lme4 uses PIRLS's expected weights ``theta mu / (theta + mu)``
  (:class:`.engine.families.NegativeBinomial2`; the modes are the same, the log-determinant is not);
* all parameters -- the fixed effects, the random effects' standard deviations and the dispersion
  ``log theta`` -- are optimized jointly (nlminb by maximum likelihood), where glmer.nb searches over theta
  outside glmer fits.  Here BOBYQA over ``(theta, beta, log nb_theta)`` from a start as glmer.nb's (a
  Poisson fit, MASS's ``theta.ml`` of its means, the nAGQ = 0 fit at that theta), finished by Newton steps;
* its standard errors are TMB's ``sdreport``: the inverse Hessian of -log L over all those parameters
  (here by central differences of the Laplace deviance, Richardson-extrapolated), whose fixed-effects
  block is ``vcov``, so the uncertainty of the dispersion and of the variance parameters is in it; and
  the conditional variances of the random effects add to ``H_bb^{-1}`` (the inverse observed
  information at fixed parameters) the delta-method term ``A V A'``, ``A = d b_hat / d(parameters)``,
  as TMB's ``diag.cov.random``.

At the optimum these do not depend on the parameterization (glmmTMB's is log SDs and its own for
correlations; here lme4's theta).  glmmTMB's nlminb stops where its gradient is still ~5e-4, ~1e-5
(relative) from the optimum; the fit here is the optimum (to ~1e-8: one Newton step from glmmTMB's
estimates with its own derivatives gives the same).
"""

from __future__ import annotations

from dataclasses import replace
from functools import cached_property

import numpy as np
import pandas as pd

from ...engine.optimize import OptimizerControl, finite_differences, minimize_bobyqa
from ...engine.pirls import random_effects
from ...engine.threads import limited_threads
from .fitting import FTOL_PER_OBSERVATION, GeneralizedMixedProblem
from .negbin import NegativeBinomialMixedModel, theta_start, with_family

__all__ = ["JointDeviance", "NegativeBinomial2MixedModel", "fit_nbinom2"]

# central-difference steps in units of each parameter's scale (an SE for beta).  The Hessian that the
# covariances invert: the Laplace deviance rounds at ~1e-13, which a step of 1e-4 magnifies to ~1e-5 of
# the Hessian, while a step of 1e-3 leaves a truncation error of ~1e-6 in the covariance of the SDs;
# Richardson's extrapolation from 1e-3 and 2e-3 removes it (the covariances then agree with sdreport's
# to ~5e-7).  The modes converge by Newton's method, to rounding: their derivatives take a small step.
HESSIAN_STEP = 1e-3
MODES_STEP = 1e-4


class JointDeviance:
    """The Laplace deviance (-2 log L, observed curvature) over ``x = (theta, beta, log nb_theta)`` and
    the conditional modes there; its own PIRLS, whose family's theta follows ``x``."""

    def __init__(self, problem: GeneralizedMixedProblem):
        self.objective = with_family(problem, problem.family).objective
        self.family = problem.family
        self.n_theta = self.objective.n_params

    def _at(self, x: np.ndarray) -> bool:
        """Set the family's dispersion to ``exp(x[-1])``; False where it is not a positive number."""
        nb_theta = float(np.exp(x[-1])) if x[-1] < 700 else np.inf
        if not 0 < nb_theta < np.inf:
            return False
        self.objective.pirls.family = self.family.with_theta(nb_theta)
        return True

    def __call__(self, x: np.ndarray) -> float:
        return self.objective.laplace(x[:-1]) if self._at(x) else np.inf

    def random_effects(self, x: np.ndarray) -> np.ndarray:
        """The conditional modes b (not spherical) of every term at ``x``, concatenated level-major."""
        self._at(x)
        k = self.n_theta
        modes = self.objective.modes(x[:k], x[k:-1])
        effects = random_effects(modes.u, self.objective.lambdas(x[:k]))
        return np.concatenate([b.ravel() for b in effects])


def fit_nbinom2(
    problem: GeneralizedMixedProblem, control: OptimizerControl | None = None
) -> NegativeBinomial2MixedModel:
    """glmmTMB's nbinom2 fit of ``problem`` (its family a :class:`NegativeBinomial2`): the joint maximum
    of the Laplace likelihood over (theta, beta, log nb_theta)."""
    control = control or OptimizerControl()
    if control.ftol_abs is None:
        control = replace(control, ftol_abs=FTOL_PER_OBSERVATION * problem.frame.nobs)
    start, first = theta_start(problem, 0, replace(control, check_convergence=False))
    joint = JointDeviance(problem)
    k = joint.n_theta
    theta = first.theta
    se = np.sqrt(np.diag(first.chol.inverse_fixed_crossprod()))
    x0 = np.concatenate([theta, first.fixef.to_numpy(), [np.log(start)]])
    lower = np.concatenate([joint.objective.lower_bounds, np.full(len(se) + 1, -np.inf)])
    # steps and units as glmer's Laplace stage (:func:`.fitting.laplace_stage`); log nb_theta's are 1
    theta_step = np.where(theta != 0, np.minimum(0.05, np.abs(theta) / 4), 0.05)
    step = np.concatenate([theta_step, se / 3, [0.1]])
    scale = np.concatenate([np.ones(k), se, [1.0]])
    with limited_threads():
        result = minimize_bobyqa(joint, x0, lower, control, initial_step=step, scale=scale)
    final = with_family(problem, problem.family.with_theta(float(np.exp(result.x[-1]))))
    return NegativeBinomial2MixedModel(
        final, result.x[:k], result.x[k:-1], 1, control, result, theta_search=None, scale=scale
    )


class NegativeBinomial2MixedModel(NegativeBinomialMixedModel):
    """A glmmTMB nbinom2 fit: the GLMM at the jointly estimated dispersion ``nb_theta`` (glmmTMB's
    ``sigma(m)``), with glmmTMB's standard errors and conditional variances (``sdreport``)."""

    def __init__(self, *args, scale: np.ndarray, **kwargs):
        super().__init__(*args, **kwargs)
        self._scale = scale  # units of (theta, beta, log nb_theta): the derivatives' steps

    def _fitted(self, problem: GeneralizedMixedProblem) -> NegativeBinomial2MixedModel:
        """``problem`` fitted by glmmTMB's method again (the dispersion estimated again)."""
        return fit_nbinom2(problem, self.control)

    @cached_property
    def _derivatives(self) -> tuple[np.ndarray, np.ndarray]:
        """``(V, A)`` in the scaled parameters ``x / scale``, ``x = (theta, beta, log nb_theta)``: V the
        inverse Hessian of -log L (twice that of the deviance), A the derivatives of the modes b."""
        joint = JointDeviance(self.problem)
        scale = self._scale
        point = np.concatenate([self._theta, self._beta, [np.log(self.nb_theta)]]) / scale

        def deviance(scaled: np.ndarray) -> float:
            return joint(scaled * scale)

        def modes(scaled: np.ndarray) -> np.ndarray:
            return joint.random_effects(scaled * scale)

        with limited_threads():
            # Richardson's extrapolation from steps h and 2h: the h^2 term of the truncation error cancels
            _, fine = finite_differences(deviance, point, HESSIAN_STEP, self._criterion, central_cross=True)
            _, coarse = finite_differences(
                deviance, point, 2 * HESSIAN_STEP, self._criterion, central_cross=True
            )
            hessian = (4 * fine - coarse) / 3
            columns = []
            for i in range(len(point)):
                e = np.zeros(len(point))
                e[i] = MODES_STEP
                columns.append((modes(point + e) - modes(point - e)) / (2 * MODES_STEP))
        try:
            inverse = np.linalg.inv(hessian)
        except np.linalg.LinAlgError:
            inverse = np.full_like(hessian, np.nan)
        return inverse + inverse.T, np.column_stack(columns)

    @cached_property
    def parameter_vcov(self) -> pd.DataFrame:
        """The covariance of all the estimated parameters (glmmTMB's ``sdr$cov.fixed``, in this order
        and parameterization): the random effects' SDs and correlations (theta), beta and log nb_theta."""
        covariance, _ = self._derivatives
        names = [f"theta{i + 1}" for i in range(len(self._theta))] + list(self.frame.fixed_names)
        names.append("log(nb_theta)")
        cov = covariance * np.outer(self._scale, self._scale)
        return pd.DataFrame(cov, index=names, columns=names)

    @cached_property
    def vcov(self) -> pd.DataFrame:
        """Covariance of the fixed effects, as glmmTMB's ``vcov``: their block of :attr:`parameter_vcov`."""
        k, names = len(self._theta), self.frame.fixed_names
        block = self.parameter_vcov.to_numpy()[k : k + len(names), k : k + len(names)]
        return pd.DataFrame(block, index=names, columns=names)

    @cached_property
    def ranef_condvar(self) -> dict[str, np.ndarray]:
        """Conditional covariances of the random effects per level, as glmmTMB's ``condVar`` (TMB's
        ``diag.cov.random``, which it reports on the diagonal): the inverse observed information at
        the estimates plus the parameters' uncertainty carried to the modes, ``A V A'``."""
        covariance, derivatives = self._derivatives
        result = dict(super().ranef_condvar)
        starts = np.concatenate([[0], np.cumsum([t.group.nlevels * t.ncols for t in self.frame.terms])])
        for name, ks in self._terms_by_group().items():
            nlevels = self.frame.terms[ks[0]].group.nlevels
            # d b / d x per level: (parameters, levels, columns of the group's terms)
            slopes = np.concatenate(
                [derivatives[starts[k] : starts[k + 1]].T.reshape(len(covariance), nlevels, -1) for k in ks],
                axis=2,
            )
            result[name] = result[name] + np.einsum("inq,ij,jnr->nqr", slopes, covariance, slopes)
        return result

    def summary(self):
        """glmmTMB's summary: the family, AIC, BIC, logLik, -2 logLik, df.resid, the random effects, the
        dispersion parameter and z tests of the fixed effects; ``print()`` it."""
        from ...report.glmer import GlmmTMBSummary

        return GlmmTMBSummary(self)
