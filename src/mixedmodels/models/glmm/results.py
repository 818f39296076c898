"""The results of a generalized linear mixed model fit (lme4's ``glmerMod``), with lme4's conventions.

:class:`GeneralizedLinearMixedModel` holds no fitting logic: PIRLS is run once more at the estimates to
give the conditional modes, the means and the blocked Cholesky factor at their working weights.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ...data.frame import ModelFrame
from ...engine.cholesky import BlockedCholesky
from ...engine.covariance import CovarianceStructure
from ...engine.families import Family
from ...engine.laplace import LaplaceObjective
from ...engine.optimize import OptimizationResult, OptimizerControl, finite_differences
from ...engine.pirls import Pirls, PirlsFit
from ...engine.threads import limited_threads
from ...errors import check_choice, check_integer, check_seed
from .. import predictions
from ..base import FittedModel
from ..random_effects import RandomEffectsResults, per_level_records

if TYPE_CHECKING:
    from ...diagnostics.quantile_residuals import ScaledResiduals
    from .fitting import GeneralizedMixedProblem

__all__ = ["DispersionTest", "GeneralizedLinearMixedModel"]

HESSIAN_STEP = 1e-4  # lme4's deriv12 delta, for the Hessian its vcov inverts
RESIDUAL_TYPES = ("deviance", "pearson", "response", "working")


class GeneralizedLinearMixedModel(RandomEffectsResults, FittedModel):
    """The results of a GLMM fitted at theta (and, for nAGQ = 1, beta: else beta is PIRLS's)."""

    reml = False
    interval_methods = ("profile", "wald", "boot")

    def __init__(
        self,
        problem: GeneralizedMixedProblem,
        theta: np.ndarray,
        beta: np.ndarray | None,
        nagq: int,
        control: OptimizerControl | None = None,
        optimization: OptimizationResult | None = None,
    ):
        self.problem = problem
        self.nagq = nagq
        self.control = control or OptimizerControl()
        self.optimization = optimization
        self._theta = np.asarray(theta, dtype=float)
        objective = self.objective
        with limited_threads():
            modes = objective.modes(self._theta, None if beta is None else np.asarray(beta, dtype=float))
            self._criterion = objective.value(modes)
            self.laplace_deviance = objective.value(modes, saturated=True)
            # the factor with the fixed effects' columns at the final weights (vcov of nAGQ = 0, condVar)
            self._chol = objective.pirls.factor(*modes.factor_point, self.lambdas)
        self._modes: PirlsFit = modes
        self._beta = modes.beta
        self._spherical = modes.u
        self.messages = self._fit_messages()

    # -- the problem ---------------------------------------------------------------------------------------
    @property
    def frame(self) -> ModelFrame:
        return self.problem.frame

    @property
    def family(self) -> Family:
        return self.problem.family

    @property
    def objective(self) -> LaplaceObjective:
        return self.problem.objective

    @property
    def covariances(self) -> list[CovarianceStructure]:
        """The covariance structure of each random-effects term (theta's parameterization)."""
        return self.problem.covariances

    @property
    def chol(self) -> BlockedCholesky:
        """The blocked Cholesky factor of [Z X working response] at the final working weights."""
        return self._chol

    @property
    def has_residual_variance(self) -> bool:
        """Whether the family has a dispersion parameter (lme4's ``useSc``)."""
        return self.family.has_dispersion

    # -- the estimates ---------------------------------------------------------------------------------------
    @property
    def theta(self) -> np.ndarray:
        return self._theta.copy()

    @property
    def lambdas(self) -> list[np.ndarray]:
        return self.objective.lambdas(self._theta)

    @property
    def nobs(self) -> int:
        return self.frame.nobs

    @property
    def n_variance_params(self) -> int:
        return len(self._theta)

    @property
    def df_loglik(self) -> int:
        """Fixed effects, covariance parameters and, for families with a dispersion, sigma."""
        return self.n_fixed + self.n_variance_params + int(self.family.has_dispersion)

    @property
    def df_resid(self) -> int:
        return self.nobs - self.df_loglik

    @property
    def sigma(self) -> float:
        """1 without a dispersion parameter; else lme4's ``sqrt((wrss + ||u||^2) / n)``, wrss the sum
        of the squared Pearson residuals."""
        if not self.family.has_dispersion:
            return 1.0
        pearson = self._pearson_residuals()
        return float(np.sqrt((pearson @ pearson + self._modes.sqr_u) / self.nobs))

    @property
    def deviance(self) -> float:
        """lme4's ``deviance()`` of a glmer fit: the sum of the squared deviance residuals."""
        return float(self._modes.deviance)

    @property
    def is_singular(self) -> bool:
        return at_boundary_theta(self.objective, self._theta, self.control.singular_tol)

    @cached_property
    def vcov(self) -> pd.DataFrame:
        """Covariance of the fixed effects, as lme4's ``vcov``: for nAGQ = 1 twice the inverse Hessian of
        the Laplace deviance over (theta, beta) (lme4's ``deriv12``: central differences, step 1e-4), its
        beta block; for
        nAGQ = 0 from the factor of the final PIRLS, sigma^2 (R_X'R_X)^{-1}."""
        names = self.frame.fixed_names
        if self.nagq == 0:
            cov = self.sigma**2 * self.chol.inverse_fixed_crossprod()
        else:
            point = np.concatenate([self._theta, self._beta])
            with limited_threads():
                _, hessian = finite_differences(
                    self.objective.laplace, point, HESSIAN_STEP, self._criterion, central_cross=True
                )
                self.objective.modes(self._theta, self._beta)  # back at the estimates for warm starts
            k = len(self._theta)
            try:
                inverse = np.linalg.inv(hessian)
            except np.linalg.LinAlgError:
                inverse = np.full_like(hessian, np.nan)
            block = inverse[k:, k:]
            cov = block + block.T
        return pd.DataFrame(cov, index=names, columns=names)

    @property
    def std_errors(self) -> pd.Series:
        return pd.Series(
            np.sqrt(np.diag(self.vcov.to_numpy())), index=self.frame.fixed_names, name="Std. Error"
        )

    def coef_table(self) -> pd.DataFrame:
        """Estimate, Std. Error, z value and Pr(>|z|) of the fixed effects (glmer's summary)."""
        from scipy import stats

        estimate = self.fixef.to_numpy()
        se = self.std_errors.to_numpy()
        z = estimate / se
        return pd.DataFrame(
            {"Estimate": estimate, "Std. Error": se, "z value": z, "Pr(>|z|)": 2 * stats.norm.sf(np.abs(z))},
            index=self.frame.fixed_names,
        )

    # -- fitted values, residuals, predictions ---------------------------------------------------------------
    @property
    def _mu(self) -> np.ndarray:
        return np.concatenate(self._modes.mus)

    @property
    def _eta(self) -> np.ndarray:
        return np.concatenate(self._modes.etas)

    @cached_property
    def fitted(self) -> pd.Series:
        """Fitted means mu (lme4's ``fitted``), indexed like the rows used."""
        return pd.Series(self._mu, index=self.frame.data.index, name="fitted")

    def _pearson_residuals(self) -> np.ndarray:
        rows, mu = self.problem.rows, self._mu
        return (rows.y - mu) * np.sqrt(rows.prior_weights / self.family.variance(mu))

    def residuals(self, type: str = "deviance") -> pd.Series:  # noqa: A002 - lme4's argument
        """Residuals of ``type`` ``"deviance"`` (lme4's default), ``"pearson"``, ``"response"`` (y - mu; y
        the proportion for a binomial) or ``"working"`` ((y - mu) / mu_eta)."""
        type = check_choice("type", type, RESIDUAL_TYPES)
        rows, mu = self.problem.rows, self._mu
        if type == "deviance":
            contributions = self.family.deviance_residuals(rows.y, mu, rows.prior_weights)
            values = np.sign(rows.y - mu) * np.sqrt(np.maximum(contributions, 0.0))
        elif type == "pearson":
            values = self._pearson_residuals()
        elif type == "response":
            values = rows.y - mu
        else:
            values = (rows.y - mu) / self.family.link.mu_eta(self._eta)
        return pd.Series(values, index=self.frame.data.index, name=f"{type} residuals")

    @cached_property
    def residual_diagnostics(self) -> pd.DataFrame:
        """Per row used: the linear predictor, the fitted mean and the residuals of each type of
        :meth:`residuals` (``residual``: the response's), the numbers :attr:`plot` draws."""
        columns = {"linear_predictor": self._eta, "fitted": self._mu}
        columns |= {
            "residual" if type == "response" else type: self.residuals(type).to_numpy()
            for type in RESIDUAL_TYPES
        }
        return pd.DataFrame(columns, index=self.frame.data.index)

    @property
    def plot(self):
        """Diagnostic plots (``m.plot.residuals()``, ``m.plot.qq()``, ``m.plot.scaled_residuals()``,
        ``m.plot.caterpillar()``, ...; :class:`mixedmodels.diagnostics.glmm_plots.GlmmPlots`); needs
        matplotlib."""
        from ...diagnostics.glmm_plots import GlmmPlots

        return GlmmPlots(self)

    def predict(
        self,
        newdata=None,
        type: str = "link",
        re_form=None,
        allow_new_levels: bool = False,  # noqa: A002
        offset=None,
    ) -> pd.Series:
        """Predictions on the scale of the linear predictor (``type="link"``) or of the response
        (``"response"``) for the data used or ``newdata``; ``re_form``, ``allow_new_levels`` and the
        offset of new data (``offset``) as :meth:`mixedmodels.LinearMixedModel.predict`."""
        type = check_choice("type", type, ("link", "response"))
        eta = predictions.predict(self, newdata, re_form, allow_new_levels, offset)
        if newdata is None and re_form is None:
            eta = pd.Series(self._eta, index=eta.index, name="predicted")
        return eta if type == "link" else predictions.on_response_scale(eta, self.family.link)

    # -- simulation, refits and checks ----------------------------------------------------------------------
    def simulate(self, nsim: int = 1, seed: int | None = None) -> pd.DataFrame:
        """Responses simulated from the fitted model (lme4's ``simulate``): new random effects
        ``Lambda u`` (u standard normal; as :attr:`ranef` and lme4, not scaled by sigma, also for the
        families with a dispersion), then draws from the family at the means they give (binomial:
        ``rbinom`` of the trials, returned as proportions of them, as the fit reads a ``cbind()``
        response; Poisson, negative binomial; Gamma with shape ``weights / sigma^2`` and inverse
        Gaussian with dispersion ``sigma^2 / weights``: the fitted model's variance ``sigma^2 V(mu) /
        weights``, as lme4 >= 1.1-35.4's Gamma draws, where lme4 1.1-31 takes shape ``sigma weights``
        and, for the inverse Gaussian, ``weights / sigma``).  One column ``sim_1``, ... per simulation."""
        nsim = check_integer("nsim", nsim)
        rng = np.random.default_rng(check_seed(seed))
        rows = self.problem.rows
        mean = self.frame.x @ self._beta + rows.offset
        out = {}
        for i in range(nsim):
            mu = self.family.link.linkinv(mean + predictions.new_random_effects(self, rng, scale=1.0))
            out[f"sim_{i + 1}"] = self.family.sample(mu, rows.prior_weights, self.sigma, rng)
        return pd.DataFrame(out, index=self.frame.data.index)

    def refit_response(self, response: np.ndarray) -> GeneralizedLinearMixedModel:
        """The model refitted to a new response (one value per row, on :meth:`simulate`'s scale: a
        proportion of the trials for a binomial), as lme4's ``refit(m, newresp)``: the same rows,
        weights and random effects, fitted again by glmer's :func:`.fitting.fit`."""
        response = np.asarray(response, dtype=float)
        if response.shape != (self.nobs,):
            raise ValueError(f"the response has shape {response.shape}, the model has {self.nobs} rows")
        problem = self.problem
        rows = replace(problem.rows, y=response)
        self.family.check_response(response, rows.prior_weights)
        pirls = Pirls(self.family, [rows], self.n_fixed)
        objective = LaplaceObjective(pirls, problem.covariances, self.objective.convergence)
        frame = replace(self.frame, y=response * rows.trials)
        return self._fitted(replace(problem, frame=frame, rows=rows, objective=objective))

    def _fitted(self, problem: GeneralizedMixedProblem) -> GeneralizedLinearMixedModel:
        """``problem`` fitted as this model was (its nAGQ and control)."""
        from .fitting import fit

        return fit(problem, self.nagq, self.control)

    def profile_view(self):
        """The fit as likelihood profiles see it (:class:`.profile.GlmmProfileView`)."""
        from .profile import GlmmProfileView

        return GlmmProfileView(self)

    @property
    def dispersion(self) -> DispersionTest:
        """The Pearson dispersion check: the sum of squared Pearson residuals over the residual df
        (about 1 when the family's variance fits; above 1: overdispersion) and its chi-square test."""
        pearson = self._pearson_residuals()
        return DispersionTest.of(float(pearson @ pearson), self.df_resid)

    def simulate_residuals(self, nsim: int = 250, seed: int | None = None) -> ScaledResiduals:
        """Simulated scaled quantile residuals, as DHARMa's ``simulateResiduals``: each observation's
        place among ``nsim`` responses simulated from the fit (randomized for counts); uniform on
        (0, 1) when the model is right.  See :mod:`mixedmodels.diagnostics.quantile_residuals`."""
        from ...diagnostics.quantile_residuals import simulate_residuals

        return simulate_residuals(self, nsim, seed)

    # -- printing --------------------------------------------------------------------------------------------
    def summary(self):
        """glmer's summary: AIC, BIC, logLik, deviance, df.resid, scaled residuals, random effects and z
        tests of the fixed effects; ``print()`` it."""
        from ...report.glmer import GlmerSummary

        return GlmerSummary(self)

    def to_dict(self) -> dict:
        return super().to_dict() | {
            "formula": self.problem.formula_text,
            "family": self.family.name,
            "link": self.family.link.name,
            "nAGQ": self.nagq,
            "df_resid": self.df_resid,
            "se": self.std_errors.tolist(),
            "ngroups": self.ngroups,
            "theta": self.theta.tolist(),
            "varcorr": self.varcorr.replace({np.nan: None}).to_dict(orient="records"),
            "is_singular": self.is_singular,
            "ranef": per_level_records(self.ranef),
            "coef": per_level_records(self.coef),
            "ranef_condvar": {g: a.tolist() for g, a in self.ranef_condvar.items()},
            "fitted": self.fitted.tolist(),
            "residuals": self.residuals().tolist(),
            "messages": self.messages,
        }

    def __repr__(self) -> str:
        fit = "Laplace" if self.nagq == 1 else f"nAGQ={self.nagq}"
        return (
            f"<{type(self).__name__} {self.problem.formula_text!r} {self.family!r} by {fit}, {self.nobs} obs>"
        )


@dataclass(frozen=True)
class DispersionTest:
    """Pearson's chi-square (sum of squared Pearson residuals), the residual df, their ratio (the
    dispersion) and the p-value of overdispersion, ``P(chi2_df > chisq)``."""

    chisq: float
    df: int
    ratio: float
    p_value: float

    @classmethod
    def of(cls, chisq: float, df: int) -> DispersionTest:
        from scipy import stats

        return cls(chisq, df, chisq / df, float(stats.chi2.sf(chisq, df)))


def at_boundary_theta(objective: LaplaceObjective, theta: np.ndarray, tol: float) -> bool:
    """lme4's ``isSingular``: a bounded theta within ``tol`` of its bound."""
    lower = objective.lower_bounds
    bounded = np.isfinite(lower)
    return bool(np.any((theta - lower)[bounded] < tol))
