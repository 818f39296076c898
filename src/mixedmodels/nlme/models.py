"""``gls`` and ``lme``: nlme's linear models with variance functions and correlation structures.

The fits maximize nlme's (restricted) log-likelihood over the structures' unconstrained parameters
(and, for lme, lme4's relative covariance factors) with BOBYQA; the results are reported on nlme's
scales with nlme's conventions (Pinheiro & Bates 2000, ch. 5):

* log-likelihood, AIC and BIC as ``logLik.gls``/``logLik.lme``: for REML the number of observations in
  BIC is N - p, and the number of parameters is p + the structures' parameters + 1 (sigma);
* ``vcov``: gls as ``vcov.gls`` (sigma^2 (X'V^-1 X)^-1 scaled by (N - REML p)/(N - p)); lme as
  ``vcov.lme``; the coefficient tables as ``summary`` (lme: nlme's inner-outer degrees of freedom and,
  for ML, standard errors scaled by sqrt(N / (N - p)));
* ``intervals``: nlme's approximate intervals: t intervals for the coefficients, and for the variance
  parameters normal intervals on the scale of nlme's ``apVar`` (log SDs, Fisher's z of correlations,
  the structures' unconstrained parameters, log sigma) mapped back.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import stats

from ..engine.deviance import residual_dof
from ..engine.optimize import OptimizationResult, OptimizerControl, minimize_bobyqa
from ..engine.threads import limited_threads
from ..errors import (
    ConvergenceWarning,
    FitError,
    check_choice,
    check_instance,
    check_integer,
    check_positive,
    check_probability,
)
from ..frame import new_data
from ..inference.numdiff import derivatives
from ..models.base import FittedModel
from .corstruct import CorStruct
from .data import PreparedData, prepare
from .likelihood import (
    GLSLikelihood,
    LMELikelihood,
    RandomTermData,
    ResidualModel,
    least_squares,
    natural_covariance,
    split_natural,
)
from .view import NlmeInferenceView

__all__ = ["gls", "lme", "GLSModel", "LMEModel"]

_METHODS = ("REML", "ML")


def _check_arguments(method: str, control, max_iter: int, tolerance: float) -> bool:
    """The settings gls and lme share, checked; True for REML."""
    if control is not None:
        check_instance("control", control, OptimizerControl, "an OptimizerControl")
    check_integer("max_iter", max_iter)
    check_positive("tolerance", tolerance)
    return check_choice("method", method, _METHODS) == "REML"


def gls(
    formula: str,
    data,
    weights=None,
    correlation: CorStruct | None = None,
    method: str = "REML",
    control: OptimizerControl | None = None,
    max_iter: int = 50,
    tolerance: float = 1e-6,
    functions: Mapping[str, Callable] | None = None,
) -> GLSModel:
    """Generalized least squares with a variance function and a correlation structure (nlme's ``gls``).

    >>> m = gls("follicles ~ sinT + cosT", ovary, correlation=CorAR1("~ 1 | Mare"))

    ``weights``: a variance function (``VarIdent("~ 1 | g")``, ``VarPower("~ x")``, ...) or a formula
    ``"~ v"`` (= ``VarFixed``); ``correlation``: a correlation structure; ``method``: ``"REML"`` or
    ``"ML"``.  Variance functions of the fitted values (``VarPower()``, the default form) refit with the
    new fitted values as nlme does, at most ``max_iter`` times, until their largest change relative to
    the largest fitted value is below ``tolerance``.  ``functions`` are your own functions the formulas
    (the model's and the structures' forms) may call, beyond R's and NumPy's.
    """
    reml = _check_arguments(method, control, max_iter, tolerance)
    prepared = prepare(formula, data, None, weights, correlation, functions)
    return GLSModel(prepared, reml, control, max_iter, tolerance)


def lme(
    fixed: str,
    data,
    random: str,
    weights=None,
    correlation: CorStruct | None = None,
    method: str = "REML",
    control: OptimizerControl | None = None,
    max_iter: int = 50,
    tolerance: float = 1e-6,
    functions: Mapping[str, Callable] | None = None,
) -> LMEModel:
    """Linear mixed model with a variance function and a correlation structure (nlme's ``lme``).

    >>> m = lme("distance ~ age", orthodont, random="~ age | Subject", correlation=CorAR1())

    ``random``: nlme's one-sided formula (``"~ age | Subject"``, ``"~ 1 | Block/Variety"``) or lme4
    bars (``"(age | Subject)"``; ``"(sinT || Mare)"`` for a diagonal covariance).  A correlation
    structure without groups works within the innermost random-effects groups.  Other arguments as
    :func:`gls`.
    """
    reml = _check_arguments(method, control, max_iter, tolerance)
    check_instance("random", random, str, "a formula such as '~ age | Subject'")
    prepared = prepare(fixed, data, random, weights, correlation, functions)
    return LMEModel(prepared, reml, control, max_iter, tolerance)


class _NlmeModel(NlmeInferenceView, FittedModel):
    """What gls and lme fits share: the residual structure, likelihood summaries, intervals, residuals
    (and, from :class:`.view.NlmeInferenceView`, what inference reads)."""

    kind = ""

    def __init__(self, prepared: PreparedData, reml: bool, control, max_iter: int, tolerance: float):
        self.data = prepared
        self.frame = prepared.frame
        self.reml = reml
        # nlme reports optimizer failures only; lme4's gradient and Hessian check (made for theta on the
        # scale of 1) gives false alarms on the structures' parameters, so it is off unless asked for
        # BOBYQA to full precision: the profiled nlme objectives are not always smooth (spatial
        # correlations have kinks, fitted-value weights are iterated); Newton steps, taken only where
        # they lower the objective, finish the flat directions of smooth ones
        self.control = control or OptimizerControl(
            ftol_abs=1e-12, ftol_rel=1e-14, xtol_abs=1e-10, check_convergence=False
        )
        self.residual = ResidualModel(prepared.varfunc, prepared.corstruct)
        self.max_iter = max_iter
        self.tolerance = tolerance
        self.optimization: OptimizationResult | None = None
        self.iterations = 0

    # -- fitting ---------------------------------------------------------------------------------------
    def _unitless_deviance(self, params: np.ndarray) -> float:
        """What the optimizer minimizes: the deviance of the response in its standard units."""
        return self.likelihood.deviance(params, response_units=False)

    def _minimize(self, fun, start, lower, step, scale=None, restarts: int = 4) -> np.ndarray:
        """BOBYQA, restarted from the best point with a trust region of 10% of the parameters while
        that still lowers the objective (by more than 1e-12).

        The likelihoods of these models have long flat valleys (weakly determined variance parameters)
        in which one BOBYQA run can stop short; the structures' parameters can also reach values where
        a correlation matrix is not positive definite (objective infinite), which can stop BOBYQA early.
        Convergence warnings come from the last run only.
        """
        if len(start) == 0:
            return start
        x, step = np.asarray(start, dtype=float), np.asarray(step, dtype=float)
        best: OptimizationResult | None = None
        for attempt in range(restarts + 1):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                result = minimize_bobyqa(fun, x, lower, self.control, initial_step=step, scale=scale)
            improved = best is None or result.fun < best.fun - 1e-12
            if best is None or result.fun < best.fun:
                best, messages = result, caught
            if not improved or attempt == restarts:
                break
            x = best.x
            unit = 1.0 if scale is None else scale
            step = np.maximum(0.1 * np.abs(x), 0.02 * unit)
        for message in messages:
            warnings.warn(message.message, ConvergenceWarning, stacklevel=4)
        self.optimization = best
        return best.x

    @limited_threads()
    def _fit_iterating(self) -> None:
        """Fit; with a variance function of the fitted values, start from the least-squares fitted
        values and refit with the new fitted values as the covariate until they stop changing (nlme's
        outer iterations; nlme tests the parameters, which in flat directions move within the
        optimizer's precision while the fitted values do not)."""
        if self.residual.uses_fitted:
            x, y = self.data.x, self.data.y
            self.likelihood.fitted_covariate = x @ least_squares(x, y)
        self._fit_once()
        self._check_bounded()
        if not self.residual.uses_fitted:
            return
        for iteration in range(1, self.max_iter + 1):
            covariate = self._fitted_sorted_innermost()
            change = np.max(np.abs(covariate - self.likelihood.fitted_covariate)) / np.max(np.abs(covariate))
            if change <= self.tolerance:
                return
            self.likelihood.fitted_covariate = covariate
            self._fit_once(start=self._params)
            self._check_bounded()
            self.iterations = iteration
        raise FitError(
            f"the fitted values did not converge in {self.max_iter} iterations (relative change {change:.2g})"
        )

    def _check_bounded(self) -> None:
        """Variance-function parameters that went to a limit: an error if the likelihood still rises
        beyond (it has no maximum; nlme stops with "false convergence"), else a warning (the estimate
        is on the boundary, e.g. a REML fit with a stratum of one row)."""
        varfunc = self.residual.varfunc
        if varfunc is None:
            return
        first = len(self._params) - varfunc.n_params
        params = self._params[first:]
        limit = varfunc.at_limit(params)
        if not limit.any():
            return
        further = self._params.copy()
        further[first:][limit] += 10.0 * np.sign(params[limit])
        listed = ", ".join(
            f"{name} ({value:.2g})" for name, value in varfunc.coefficients(params)[limit].items()
        )
        if self._unitless_deviance(further) < self._unitless_deviance(self._params) - 1.0:
            raise FitError(
                f"the likelihood has no maximum: the variance parameters {listed} go to a limit (a stratum "
                "with too few observations for its own variance?)"
            )
        warnings.warn(
            f"the variance parameters {listed} are at a limit (a boundary estimate)",
            ConvergenceWarning,
            stacklevel=4,
        )

    # -- basic results ---------------------------------------------------------------------------------
    @property
    def nobs(self) -> int:
        return self.data.nobs

    @property
    def sigma(self) -> float:
        """Residual standard deviation (of a row with variance weight 1)."""
        return self._sigma

    @property
    def n_variance_params(self) -> int:
        return self.residual.n_params

    @property
    def bic_nobs(self) -> int:
        """nlme's number of observations in BIC: N - p for REML fits."""
        return residual_dof(self.nobs, self.n_fixed, self.reml)

    def _structure_params(self) -> np.ndarray:
        return self._params[-self.residual.n_params :] if self.residual.n_params else np.zeros(0)

    @property
    def correlation_parameters(self) -> pd.Series:
        """The correlation structure's parameters on nlme's reported scale (Phi, Rho, range, ...)."""
        if self.residual.corstruct is None:
            return pd.Series(dtype=float)
        return self.residual.corstruct.coefficients(self.residual.split(self._structure_params())[0])

    @property
    def variance_parameters(self) -> pd.Series:
        """The variance function's parameters on nlme's reported scale (ratios, power, expon, const)."""
        if self.residual.varfunc is None:
            return pd.Series(dtype=float)
        return self.residual.varfunc.coefficients(self.residual.split(self._structure_params())[1])

    @cached_property
    def variance_weights(self) -> pd.Series:
        """nlme's ``varWeights``: 1 / (relative SD) of each row."""
        log_w = self.residual.log_weights(self._structure_params(), self.likelihood.fitted_covariate)
        weights = np.ones(self.nobs) if log_w is None else np.exp(log_w)
        return self._series(weights, "weights")

    def _series(self, sorted_values: np.ndarray, name: str) -> pd.Series:
        return pd.Series(
            self.data.unsort(np.asarray(sorted_values, dtype=float)), index=self._index, name=name
        )

    @property
    def _index(self) -> pd.Index:
        """The input's index of the rows used."""
        return self.data.index

    # -- residuals ---------------------------------------------------------------------------------------
    def resid(self, type: str = "response", level: int | None = None) -> pd.Series:  # noqa: A002 - nlme's name
        """Residuals of ``type`` ``"response"`` (y - fitted), ``"pearson"`` (divided by their estimated SD
        sigma / weight) or ``"normalized"`` (pearson residuals multiplied by the correlation structure's
        whitening factor in each group: independent with variance 1 under the model).  lme: at
        ``level`` (0 = fixed effects only, default the innermost level)."""
        check_choice("type", type, ("response", "pearson", "normalized"))
        response = self.frame.y - self._fitted_values(level)
        if type == "response":
            return pd.Series(response, index=self._index, name="residuals")
        pearson = response * self.variance_weights.to_numpy() / self._sigma
        if type == "normalized" and self.residual.corstruct is not None:
            cor_params = self.residual.split(self._structure_params())[0]
            sorted_pearson = pearson[self.data.order]
            whitened, _ = self.residual.corstruct.whiten(cor_params, sorted_pearson)
            return self._series(whitened, "residuals")
        return pd.Series(pearson, index=self._index, name="residuals")

    @property
    def residuals(self) -> pd.Series:
        """Response residuals y - fitted (innermost level for lme)."""
        return self.resid("response")

    # -- approximate covariance of the variance parameters (nlme's apVar) -------------------------------
    @cached_property
    def _natural_estimate(self) -> np.ndarray:
        return np.concatenate(
            [self._natural_random(), self.residual.natural(self._structure_params()), [math.log(self._sigma)]]
        )

    def _natural_random(self) -> np.ndarray:
        return np.zeros(0)

    @cached_property
    def apvar(self) -> pd.DataFrame:
        """Approximate covariance of the variance parameters on nlme's apVar scale: the inverse of minus
        the Hessian of the log-likelihood in (log SDs and Fisher's z of the random effects, the
        structures' natural parameters, log sigma), with the fixed effects profiled out."""
        estimate = self._natural_estimate
        h = derivatives(self._loglik_sigma, estimate, relative=1e-3, levels=2)[2]
        if not np.all(np.linalg.eigvalsh(h) < 0):
            raise FitError("Non-positive definite approximate variance-covariance")
        names = self._natural_names()
        return pd.DataFrame(np.linalg.inv(-h), index=names, columns=names)

    def _natural_names(self) -> list[str]:
        names = []
        if self.residual.corstruct is not None:
            names += [f"corStruct.{n}" for n in self.correlation_parameters.index]
        if self.residual.varfunc is not None:
            names += [f"varStruct.{n}" for n in self.variance_parameters.index]
        return self._random_natural_names() + names + ["log(sigma)"]

    def _random_natural_names(self) -> list[str]:
        return []

    def _variance_intervals(self, level: float) -> dict[str, pd.DataFrame]:
        """Intervals of the variance parameters: normal on the apVar scale, mapped back."""
        z = stats.norm.ppf(0.5 + level / 2)
        estimate = self._natural_estimate
        half = z * np.sqrt(np.diag(self.apvar.to_numpy()))
        bounds = {"lower": estimate - half, "est.": estimate, "upper": estimate + half}
        out: dict[str, pd.DataFrame] = {}
        nrandom = len(self._natural_random())
        out.update(self._random_intervals({k: v[:nrandom] for k, v in bounds.items()}))
        cor_n = self.residual.sizes[0]
        sections = [
            ("corStruct", self.residual.corstruct, slice(nrandom, nrandom + cor_n)),
            ("varStruct", self.residual.varfunc, slice(nrandom + cor_n, len(estimate) - 1)),
        ]
        for name, structure, part in sections:
            if structure is None or part.stop == part.start:
                continue
            columns = {k: structure.reported_from_natural(v[part]) for k, v in bounds.items()}
            out[name] = pd.DataFrame(columns)
        out["sigma"] = pd.DataFrame({k: [math.exp(v[-1])] for k, v in bounds.items()}, index=["sigma"])
        return out

    def _random_intervals(self, bounds) -> dict[str, object]:
        return {}

    def _coef_intervals(self, level: float, df) -> pd.DataFrame:
        se = np.sqrt(np.diag(self.vcov.to_numpy()))
        half = stats.t.ppf(0.5 + level / 2, df) * se
        return pd.DataFrame(
            {"lower": self._beta - half, "est.": self._beta, "upper": self._beta + half},
            index=self.frame.fixed_names,
        )

    # -- tests -------------------------------------------------------------------------------------------
    @property
    def wald_vcov(self) -> pd.DataFrame:
        """The covariance of the fixed effects nlme's t and F tests use (``vcov``; see lme's)."""
        return self.vcov

    @cached_property
    def _nlme_df(self) -> tuple[np.ndarray, dict[str, float]]:
        """Denominator df of the fixed effects and of the terms (gls: N - p for all)."""
        from .fixdf import term_columns

        residual = float(self.nobs - self.n_fixed)
        return np.full(self.n_fixed, residual), dict.fromkeys(term_columns(self.frame), residual)

    @property
    def fixed_df(self) -> pd.Series:
        """Denominator degrees of freedom of each fixed effect's t test (lme: nlme's ``getFixDF``)."""
        return pd.Series(self._nlme_df[0], index=self.frame.fixed_names, name="df")

    @property
    def terms_df(self) -> pd.Series:
        """Denominator degrees of freedom of each fixed-effects term's F test (lme: ``fixDF$terms``)."""
        return pd.Series(self._nlme_df[1], name="df")

    def coef_table(self, ddf: str | None = None) -> pd.DataFrame:
        """Estimate, Std. Error, df, t value and Pr(>|t|) as nlme's ``summary`` (gls: N - p df; lme:
        nlme's inner-outer df, and for ML fits standard errors scaled by sqrt(N / (N - p))).

        With ``ddf`` (``"satterthwaite"``, ``"residual"`` or ``"asymptotic"``), lmer's table with those
        df and ``vcov``'s standard errors instead (:meth:`mixedmodels.LinearMixedModel.coef_table`).
        """
        if ddf is not None:
            from ..inference.contrasts import coefficient_table

            return coefficient_table(self, ddf)
        se = np.sqrt(np.diag(self.wald_vcov.to_numpy()))
        df = self.fixed_df.to_numpy()
        t = self._beta / se
        return pd.DataFrame(
            {
                "Estimate": self._beta,
                "Std. Error": se,
                "df": df,
                "t value": t,
                "Pr(>|t|)": 2 * stats.t.sf(np.abs(t), df),
            },
            index=self.frame.fixed_names,
        )

    def anova(
        self,
        *others: _NlmeModel,
        type: str | int | None = None,  # noqa: A002 - nlme's name
        L=None,
        ddf: str | None = None,
    ) -> pd.DataFrame:
        """nlme's ``anova``: alone, F tests of the fixed-effects terms (``type`` "sequential", the
        default, or "marginal") or of ``L beta = 0``; with other fits, the likelihood-ratio comparison
        (``anova(m1, m2, ...)``).  See :func:`mixedmodels.nlme.anova`.

        With ``ddf`` (``"satterthwaite"``, ``"residual"`` or ``"asymptotic"``), lmer's F tests of the
        terms of this fit instead: ``type`` 1, 2 or 3 (default 3) with lmerTest's hypotheses and
        columns (:meth:`mixedmodels.LinearMixedModel.anova`).
        """
        if ddf is not None:
            if others or L is not None:
                raise ValueError(
                    "ddf= is for the F tests of the terms of one fit; test L beta = 0 with "
                    "contrast(L, ddf=...) and compare fits without ddf="
                )
            from ..inference.anova import anova_table

            return anova_table(self, type=3 if type is None else type, ddf=ddf)
        from .anova import anova

        return anova(self, *others, type=type, L=L)

    def summary(self):
        """nlme-style summary; ``print()`` it (tables: ``.coefficients``)."""
        from .summary import NlmeSummary

        return NlmeSummary(self)

    def to_dict(self) -> dict:
        """The results as plain Python types (for JSON)."""
        return super().to_dict() | {
            "model": self.kind,
            "method": self.method,
            "correlation_parameters": self.correlation_parameters.to_dict(),
            "variance_parameters": self.variance_parameters.to_dict(),
        }


class GLSModel(_NlmeModel):
    """A fitted gls model; see :func:`gls`."""

    kind = "gls"

    def __init__(self, prepared, reml, control=None, max_iter=50, tolerance=1e-6):
        super().__init__(prepared, reml, control, max_iter, tolerance)
        self.likelihood = GLSLikelihood(prepared.x, prepared.y, self.residual, reml)
        self._fit_iterating()

    def _fit_once(self, start: np.ndarray | None = None) -> None:
        start = self.residual.initial if start is None else start
        params = self._minimize(
            self._unitless_deviance, start, np.full(len(start), -np.inf), np.full(len(start), 0.3)
        )
        self._params = np.asarray(params, dtype=float)
        fit = self.likelihood.fit(self._params)
        self._beta, self._sigma, self._criterion = fit.beta, fit.sigma, -2.0 * fit.loglik
        self._r_fixed = fit.r_fixed

    def _fitted_sorted_innermost(self) -> np.ndarray:
        return self.data.x @ self._beta

    def _fitted_values(self, level: int | None = None) -> np.ndarray:
        if level is not None and check_integer("level", level, minimum=0) != 0:
            raise ValueError("a gls model has no grouping levels; use level=None or 0")
        return self.frame.x @ self._beta

    @property
    def fitted(self) -> pd.Series:
        """Fitted values X beta, indexed like the rows used from the input."""
        return pd.Series(self._fitted_values(), index=self._index, name="fitted")

    @property
    def vcov(self) -> pd.DataFrame:
        """nlme's ``vcov.gls``: sigma^2 (R_X'R_X)^-1 (N - REML p)/(N - p)."""
        inverse = np.linalg.inv(self._r_fixed)
        n, p = self.nobs, self.n_fixed
        scale = residual_dof(n, p, self.reml) / (n - p)
        cov = self._sigma**2 * scale * inverse @ inverse.T
        names = self.frame.fixed_names
        return pd.DataFrame(cov, index=names, columns=names)

    def _loglik_sigma(self, natural):
        return self.likelihood.loglik_sigma(natural)

    def intervals(self, level: float = 0.95) -> dict[str, pd.DataFrame]:
        """nlme's ``intervals.gls``: {"coef", "corStruct", "varStruct", "sigma"} with lower, est., upper.

        Without variance parameters sigma's interval is the chi-square one, as nlme's.
        """
        level = check_probability("level", level)
        out = {"coef": self._coef_intervals(level, self.nobs - self.n_fixed)}
        if self.residual.n_params == 0:
            nr = residual_dof(self.nobs, self.n_fixed, self.reml)
            root = self._sigma * math.sqrt(nr)
            out["sigma"] = pd.DataFrame(
                {
                    "lower": [root / math.sqrt(stats.chi2.ppf(0.5 + level / 2, nr))],
                    "est.": [self._sigma],
                    "upper": [root / math.sqrt(stats.chi2.ppf(0.5 - level / 2, nr))],
                },
                index=["sigma"],
            )
            return out
        out.update(self._variance_intervals(level))
        return out

    def predict(self, newdata=None) -> pd.Series:
        """X beta for the fit's rows or for ``newdata`` (``predict.gls``)."""
        if newdata is None:
            return self.fitted.rename("predicted")
        data, leveled = new_data(self.frame, newdata)
        x = self.frame.fixed_matrix(leveled)
        return pd.Series(x @ self._beta, index=data.index, name="predicted")


class LMEModel(_NlmeModel):
    """A fitted lme model; see :func:`lme`."""

    kind = "lme"

    def __init__(self, prepared, reml, control=None, max_iter=50, tolerance=1e-6):
        super().__init__(prepared, reml, control, max_iter, tolerance)
        order = prepared.order
        terms = [
            RandomTermData(t.factor.codes[order], t.z[order], t.factor.nlevels) for t in prepared.frame.terms
        ]
        self.likelihood = LMELikelihood(prepared.x, prepared.y, terms, self.residual, reml)
        self._fit_iterating()

    def _fit_once(self, start: np.ndarray | None = None) -> None:
        psi = self.residual.initial if start is None else start[self.likelihood.n_theta :]
        x0, step = self.likelihood.start(psi)
        if start is not None:
            x0 = np.asarray(start, dtype=float)
        scale = self.likelihood.parameter_scale(psi)
        params = self._minimize(self._unitless_deviance, x0, self.likelihood.lower_bounds, step, scale)
        self._params = np.asarray(params, dtype=float)
        result = self.likelihood.factor_at(self._params)
        if result is None:
            raise FitError("the estimates give a singular system")
        factor, _ = result
        self._factor = factor
        self._criterion = self.likelihood.deviance(self._params)
        beta, spherical = factor.solve()
        self._beta = beta
        self._sigma = math.sqrt(factor.pwrss() / self.likelihood.nr)
        self._theta = self._params[: self.likelihood.n_theta]
        factors = self.likelihood.factors(self._theta)
        self._effects = [
            u.reshape(t.nlevels, t.z.shape[1]) @ f.T
            for t, f, u in zip(self.likelihood.terms, factors, spherical)
        ]
        self._term_factors = factors

    # -- random effects --------------------------------------------------------------------------------
    @property
    def levels(self):
        """nlme's grouping levels, outermost first."""
        return self.data.levels

    @property
    def ngroups(self) -> dict[str, int]:
        return {level.name: self.frame.terms[level.term_indices[0]].factor.nlevels for level in self.levels}

    def _term_covariance(self, k: int) -> np.ndarray:
        t = self._term_factors[k]
        return self._sigma**2 * t @ t.T

    @property
    def random_covariance(self) -> dict[str, pd.DataFrame]:
        """Covariance matrix of the random effects of each grouping level (``getVarCov``)."""
        out = {}
        for level in self.levels:
            names = [n for k in level.term_indices for n in self.frame.terms[k].column_names]
            cov = np.zeros((len(names), len(names)))
            start = 0
            for k in level.term_indices:
                q = self.frame.terms[k].ncols
                cov[start : start + q, start : start + q] = self._term_covariance(k)
                start += q
            out[level.name] = pd.DataFrame(cov, index=names, columns=names)
        return out

    @property
    def varcorr(self) -> pd.DataFrame:
        """Variances, covariances, SDs and correlations of the random effects and the residual, in the
        layout of lmer's ``varcorr`` (outermost level first)."""
        rows = []
        for level in self.levels:
            for k in level.term_indices:
                cov = self._term_covariance(k)
                names = self.frame.terms[k].column_names
                sd = np.sqrt(np.diag(cov))
                for a, name in enumerate(names):
                    rows.append((level.name, name, None, cov[a, a], sd[a]))
                for a in range(len(names)):
                    for b in range(a + 1, len(names)):
                        rows.append((level.name, names[a], names[b], cov[a, b], cov[a, b] / (sd[a] * sd[b])))
        rows.append(("Residual", None, None, self._sigma**2, self._sigma))
        return pd.DataFrame(rows, columns=["group", "var1", "var2", "vcov", "sdcor"])

    @cached_property
    def ranef(self) -> dict[str, pd.DataFrame]:
        """Conditional modes (BLUPs) of the random effects, by level (outermost first); rows are the
        groups in nlme's order and labels (``"I/Victory"`` for nested levels)."""
        out = {}
        order = self.data.order
        for level in self.levels:
            codes = self.frame.terms[level.term_indices[0]].factor.codes[order]
            first = np.unique(codes, return_index=True)[1]
            appearance = codes[np.sort(first)]
            labels = level.labels[appearance]
            blocks = [
                pd.DataFrame(self._effects[k][appearance], columns=self.frame.terms[k].column_names)
                for k in level.term_indices
            ]
            table = pd.concat(blocks, axis=1)
            table.index = pd.Index(labels, name=level.name)
            out[level.name] = table
        return out

    @property
    def coef(self) -> dict[str, pd.DataFrame]:
        """Per-group coefficients: fixed effects plus the group's random effects (each level)."""
        out = {}
        for name, effects in self.ranef.items():
            table = pd.DataFrame(
                np.tile(self._beta, (len(effects), 1)), index=effects.index, columns=self.frame.fixed_names
            )
            for column in effects.columns:
                table[column] = table[column] + effects[column] if column in table else effects[column]
            out[name] = table
        return out

    # -- fitted values ---------------------------------------------------------------------------------
    def _checked_level(self, level: int | None) -> int:
        """``level`` (None: the innermost), checked to be 0 (fixed effects only) to the number of levels."""
        if level is None:
            return len(self.levels)
        level = check_integer("level", level, minimum=0)
        if level > len(self.levels):
            raise ValueError(f"level must be between 0 and {len(self.levels)} (grouping levels), not {level}")
        return level

    def _add_random_effects(self, values: np.ndarray, level: int, rows) -> np.ndarray:
        """``values`` plus z'b of every term of the outermost ``level`` levels; ``rows(term)`` gives the
        term's (group codes, z) of the rows, codes -1 (groups not in the fit) giving NaN."""
        for lev in self.levels[:level]:
            for k in lev.term_indices:
                codes, z = rows(self.frame.terms[k])
                effects = self._effects[k][np.maximum(codes, 0)]
                values = values + np.where(codes >= 0, np.einsum("nq,nq->n", z, effects), np.nan)
        return values

    def _fitted_values(self, level: int | None = None) -> np.ndarray:
        """Fitted values in frame order at ``level`` (0 = fixed effects only, default innermost)."""
        return self._add_random_effects(
            self.frame.x @ self._beta, self._checked_level(level), lambda term: (term.factor.codes, term.z)
        )

    def _fitted_sorted_innermost(self) -> np.ndarray:
        return self._fitted_values()[self.data.order]

    @property
    def fitted(self) -> pd.Series:
        """Fitted values at the innermost level, indexed like the rows used from the input."""
        return pd.Series(self._fitted_values(), index=self._index, name="fitted")

    def fitted_levels(self) -> pd.DataFrame:
        """Fitted values at every level: ``fixed`` and one column per grouping level (``fitted(m, 0:Q)``)."""
        columns = {"fixed": self._fitted_values(0)}
        for i, level in enumerate(self.levels, start=1):
            columns[level.name] = self._fitted_values(i)
        return pd.DataFrame(columns, index=self._index)

    def predict(self, newdata=None, level: int | None = None) -> pd.Series:
        """Predictions at ``level`` (0 = population, default innermost) for the fit's rows or ``newdata``.

        As nlme, rows of groups not seen in the fit are NaN at levels that include those groups.
        """
        if newdata is None:
            return pd.Series(self._fitted_values(level), index=self._index, name="predicted")
        level = self._checked_level(level)
        random = tuple(self.frame.terms[k].term for lev in self.levels[:level] for k in lev.term_indices)
        data, leveled = new_data(self.frame, newdata, random)
        values = self._add_random_effects(
            self.frame.fixed_matrix(leveled) @ self._beta,
            level,
            lambda term: (term.factor.codes_for(data), term.design.matrix(leveled)),
        )
        return pd.Series(values, index=data.index, name="predicted")

    # -- inference ----------------------------------------------------------------------------------------
    @property
    def vcov(self) -> pd.DataFrame:
        """Covariance of the fixed effects, sigma^2 (R_X'R_X)^-1 (nlme's ``vcov.lme``)."""
        cov = self._sigma**2 * self._factor.inverse_fixed_crossprod()
        names = self.frame.fixed_names
        return pd.DataFrame(cov, index=names, columns=names)

    @cached_property
    def _nlme_df(self) -> tuple[np.ndarray, dict[str, float]]:
        """nlme's inner-outer denominator df (``getFixDF``) of the fixed effects and of the terms."""
        from .fixdf import fixed_effects_df, term_columns

        order = self.data.order
        codes = [self.frame.terms[level.term_indices[0]].factor.codes[order] for level in self.levels]
        return fixed_effects_df(self.data.x, codes, term_columns(self.frame))

    @property
    def wald_vcov(self) -> pd.DataFrame:
        """The covariance of the fixed effects nlme's t and F tests use: ``vcov``, for ML fits scaled by
        N / (N - p) (nlme's ``adjustSigma``)."""
        return self.vcov if self.reml else self.vcov * (self.nobs / (self.nobs - self.n_fixed))

    @property
    def n_variance_params(self) -> int:
        return self.likelihood.n_theta + self.residual.n_params

    def _natural_random(self) -> np.ndarray:
        return np.concatenate([natural_covariance(self._term_covariance(k)) for k in self._apvar_terms()])

    def _apvar_terms(self) -> list[int]:
        """Terms in nlme's reStruct order: innermost level first."""
        return [k for level in reversed(self.levels) for k in level.term_indices]

    def _split_apvar(self, natural: np.ndarray) -> tuple[dict[int, np.ndarray], np.ndarray]:
        """The random-effects blocks of an apVar vector by term, and the rest of it."""
        terms = self._apvar_terms()
        blocks, rest = split_natural(natural, [self.frame.terms[k].ncols for k in terms])
        return dict(zip(terms, blocks)), rest

    def _block_names(self, k: int) -> list[str]:
        """Names of term k's pdNatural parameters: sd(column) ..., cor(column,column) ..."""
        columns = self.frame.terms[k].column_names
        pairs = zip(*np.triu_indices(len(columns), 1))
        return [f"sd({c})" for c in columns] + [f"cor({columns[a]},{columns[b]})" for a, b in pairs]

    def _level_names(self) -> dict[int, str]:
        """The grouping level of each term."""
        return {k: level.name for level in self.levels for k in level.term_indices}

    def _random_natural_names(self) -> list[str]:
        levels = self._level_names()
        return [f"{name}|{levels[k]}" for k in self._apvar_terms() for name in self._block_names(k)]

    def _loglik_sigma(self, natural):
        permuted = self._to_theta_order(natural)
        sizes = [self.frame.terms[k].ncols for k in range(len(self.frame.terms))]
        return self.likelihood.loglik_sigma(permuted, sizes)

    def _to_theta_order(self, natural: np.ndarray) -> np.ndarray:
        """The apVar vector (terms innermost level first) with its random part in the model's term order."""
        blocks, rest = self._split_apvar(natural)
        return np.concatenate([blocks[k] for k in range(len(self.frame.terms))] + [rest])

    def _random_intervals(self, bounds) -> dict[str, object]:
        blocks_of_bound = {key: self._split_apvar(values)[0] for key, values in bounds.items()}
        levels = self._level_names()
        per_level: dict[str, list[pd.DataFrame]] = {}
        for k in self._apvar_terms():
            q = self.frame.terms[k].ncols
            table = {
                key: np.concatenate([np.exp(blocks[k][:q]), np.tanh(blocks[k][q:] / 2)])
                for key, blocks in blocks_of_bound.items()
            }
            per_level.setdefault(levels[k], []).append(pd.DataFrame(table, index=self._block_names(k)))
        return {"reStruct": {level.name: pd.concat(per_level[level.name]) for level in self.levels}}

    def intervals(self, level: float = 0.95) -> dict[str, object]:
        """nlme's ``intervals.lme``: {"fixed", "reStruct": {level: table}, "corStruct", "varStruct",
        "sigma"}, each with columns lower, est., upper."""
        level = check_probability("level", level)
        out: dict[str, object] = {"fixed": self._coef_intervals(level, self.fixed_df.to_numpy())}
        out.update(self._variance_intervals(level))
        return out

    def to_dict(self) -> dict:
        """The results as plain Python types (for JSON), with the random effects' groups and variances."""
        return super().to_dict() | {
            "ngroups": self.ngroups,
            "varcorr": self.varcorr.replace({np.nan: None}).to_dict(orient="records"),
        }
