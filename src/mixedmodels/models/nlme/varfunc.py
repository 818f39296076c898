"""Variance functions of the residuals, as nlme's ``varFunc`` classes.

A variance function says how the residual standard deviation of row i changes: ``sd_i = sigma g_i``.
nlme works with the weights ``w_i = 1 / g_i``: each row is multiplied by its weight and the
log-likelihood gains ``sum_i log w_i`` (Pinheiro & Bates 2000, section 5.2).  Forms follow nlme:
``"~ v"`` for a covariate ``v`` (``"~ fitted(.)"`` for the fitted values), ``"~ v | s"`` for one
parameter per stratum ``s`` (``"~ 1 | s"`` for ``VarIdent``; ``a*b`` for crossed strata).  Strata are
ordered as they first appear in the data sorted by groups, as in nlme; ``VarIdent``'s ratios are
relative to the first one.

Unconstrained parameters (what is optimized and what nlme's intervals are built on) and weights:

* ``VarFixed(v)``:          no parameter,            w = |v|^(-1/2)
* ``VarIdent``:             u_s = log(ratio_s),      w = 1 / ratio_s  (ratio 1 for the first stratum)
* ``VarPower``:             u_s = delta_s,           w = |v|^(-delta_s)
* ``VarExp``:               u_s = delta_s,           w = exp(-delta_s v)
* ``VarConstPower``:        (log c_s, delta_s),      w = 1 / (c_s + |v|^delta_s)
* ``VarComb(f1, f2, ...)``: the parameters of each,  w = product of the weights.
"""

from __future__ import annotations

import copy
import math
import string
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from ...errors import FormulaError, check_instance, check_real
from ...formula.nlme import StructureForm, parse_form

__all__ = ["VarFunc", "VarFixed", "VarIdent", "VarPower", "VarExp", "VarConstPower", "VarComb"]


def _named_values(values, what: str) -> dict[str, float]:
    if isinstance(values, dict):
        return {str(k): check_real(f"{what} of stratum {k!r}", v, finite=True) for k, v in values.items()}
    raise TypeError(f"{what} must be a dict of stratum -> value, not {type(values).__name__}")


def _number_or_named(value, what: str) -> float | dict[str, float] | None:
    """A parameter given as one number, as ``{stratum: number}`` or not at all (None)."""
    if value is None:
        return None
    return _named_values(value, what) if isinstance(value, dict) else check_real(what, value, finite=True)


_LIMIT_LOG_RATIO = math.log(1e8)  # an SD ratio beyond 1e8 between strata is on its way to 0 or infinity


class VarFunc:
    """Base class of the variance functions; bind() makes a copy set up for one data set."""

    def __init__(self, form: str):
        self.form: StructureForm = parse_form(form, type(self).__name__)
        self._start = np.zeros(0)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.form.text!r})"

    @property
    def uses_fitted(self) -> bool:
        """True when the covariate is the fitted values (the fit then iterates, as nlme does)."""
        return self.form.uses_fitted

    @property
    def variables(self) -> list[str]:
        return self.form.variables

    def bind(self, data: pd.DataFrame, functions: Mapping[str, Callable] | None = None) -> VarFunc:
        """A copy set up for ``data`` (rows in the model's sorted order); the form's covariate may call
        the fit's own ``functions``."""
        bound = copy.copy(self)
        bound.form = self.form.with_functions(functions)
        bound._setup(data)
        return bound

    def _setup(self, data: pd.DataFrame) -> None:
        raise NotImplementedError

    def _strata(self, data: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
        """Per-row stratum codes in order of first appearance, and the stratum labels."""
        labels = self.form.group_labels(data)
        unique, first, codes = np.unique(labels, return_index=True, return_inverse=True)
        order = np.argsort(first)
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        return rank[codes.ravel()], [str(u) for u in unique[order]]

    def _covariate(self, data: pd.DataFrame) -> np.ndarray | None:
        if self.form.covariate is None:
            raise FormulaError(f"{type(self).__name__}: form {self.form.text!r} must have a covariate")
        if self.form.uses_fitted:
            return None
        values = self.form.covariate_matrix(data)
        if values.shape[1] != 1:
            raise FormulaError(
                f"{type(self).__name__}: the covariate of {self.form.text!r} must be one column"
            )
        return values[:, 0]

    def _values(self, fitted: np.ndarray | None) -> np.ndarray:
        if self._covariate_values is not None:
            return self._covariate_values
        if fitted is None:
            raise ValueError(f"{type(self).__name__} of the fitted values needs them")
        return fitted

    # -- after bind() --------------------------------------------------------------------------------
    @property
    def n_params(self) -> int:
        return len(self._start)

    @property
    def initial(self) -> np.ndarray:
        return self._start.copy()

    def log_weights(self, params: np.ndarray, fitted: np.ndarray | None = None) -> np.ndarray:
        """log w_i of every row (w_i = 1 / g_i)."""
        raise NotImplementedError

    def coefficients(self, params: np.ndarray) -> pd.Series:
        """The parameters on nlme's reported scale (``coef(vf, unconstrained = FALSE)``)."""
        raise NotImplementedError

    def natural(self, params: np.ndarray) -> np.ndarray:
        """The parameters on which nlme's approximate covariance is computed (the unconstrained ones)."""
        return np.asarray(params, dtype=float)

    def at_limit(self, params: np.ndarray) -> np.ndarray:
        """Which parameters went to a limit of their scale (the likelihood's maximum is there, or
        there is none)."""
        return np.zeros(len(params), dtype=bool)

    def reported_from_natural(self, natural: np.ndarray) -> pd.Series:
        return self.coefficients(natural)


class VarFixed(VarFunc):
    """Known variance covariate: Var(e_i) = sigma^2 |v_i| (nlme's ``varFixed(~ v)``)."""

    def _setup(self, data):
        if self.form.groups:
            raise FormulaError("VarFixed takes no strata ('| group')")
        self._covariate_values = self._covariate(data)
        if self._covariate_values is None:
            raise FormulaError("VarFixed needs a data covariate, not the fitted values")
        if np.any(self._covariate_values == 0):
            raise ValueError("the VarFixed covariate is 0 in some rows (their variance would be 0)")

    def log_weights(self, params, fitted=None):
        return -0.5 * np.log(np.abs(self._covariate_values))

    def coefficients(self, params):
        return pd.Series(dtype=float)


class VarIdent(VarFunc):
    """A different standard deviation per stratum: ``VarIdent("~ 1 | s")`` (nlme's ``varIdent``).

    The reported parameters are the ratios of each stratum's SD to the first (reference) stratum's.
    ``value``: starting ratios as ``{stratum: ratio}``; naming all strata but one makes that one the
    reference, as in nlme.  ``fixed``: ``{stratum: ratio}`` held fixed.
    """

    def __init__(self, form: str = "~ 1", value: dict | None = None, fixed: dict | None = None):
        super().__init__(form)
        self.value = None if value is None else _named_values(value, "VarIdent value")
        self.fixed = {} if fixed is None else _named_values(fixed, "VarIdent fixed")
        for what, values in (("initial", self.value or {}), ("fixed", self.fixed)):
            if any(v <= 0 for v in values.values()):
                raise ValueError(f"{what} values for 'varIdent' must be > 0")

    def _setup(self, data):
        self._covariate_values = None
        if not self.form.groups:
            self._codes = np.zeros(len(data), dtype=np.int64)
            self._ratios_fixed = np.ones(1)
            self._varying = np.zeros(0, dtype=np.int64)
            self._labels = ["1"]
            self._start = np.zeros(0)
            return
        codes, labels = self._strata(data)
        for what, values in (("fixed", self.fixed), ("value", self.value or {})):
            unknown = sorted(set(values) - set(labels))
            if unknown:
                raise ValueError(f"{what} names in VarIdent must be strata {labels}; unknown: {unknown}")
        varying = [s for s in labels if s not in self.fixed]
        if not varying:
            raise ValueError("cannot fix variances in all groups")
        if self.value and len(set(varying) - set(self.value)) == 1:
            reference = (set(varying) - set(self.value)).pop()
            varying = [reference] + [s for s in varying if s != reference]
        order = varying + list(self.fixed)  # nlme's groupNames
        position = {label: i for i, label in enumerate(order)}
        self._labels = order
        self._codes = np.array([position[labels[c]] for c in range(len(labels))])[codes]
        self._ratios_fixed = np.array([1.0] * len(varying) + [self.fixed[s] for s in self.fixed])
        self._varying = np.arange(1, len(varying))
        start = [np.log((self.value or {}).get(s, 1.0)) for s in varying[1:]]
        self._start = np.array(start, dtype=float)

    def log_weights(self, params, fitted=None):
        log_ratios = np.log(self._ratios_fixed)
        log_ratios[self._varying] = params  # not log(exp(params)), which underflows
        return -log_ratios[self._codes]

    def coefficients(self, params):
        names = [self._labels[i] for i in self._varying]
        return pd.Series(np.exp(np.asarray(params, dtype=float)), index=names, dtype=float)

    def at_limit(self, params):
        """Strata whose SD ratio to the reference passed 1e8 or fell below 1e-8 (e.g. a stratum of one
        row, which the fixed effects fit exactly, has a variance going to 0)."""
        return np.abs(np.asarray(params, dtype=float)) > _LIMIT_LOG_RATIO


class _CovariateStrata(VarFunc):
    """Shared by VarPower, VarExp and VarConstPower: one parameter set per stratum (if any)."""

    kinds: tuple[str, ...] = ()
    defaults: tuple[float, ...] = ()

    def __init__(self, form: str, values: dict[str, object], fixed: dict[str, object]):
        super().__init__(form)
        single = len(self.kinds) == 1  # then the arguments are value= and fixed=, else named by kind
        self.values = {k: _number_or_named(v, "value" if single else k) for k, v in values.items()}
        fixed = {k: v for k, v in fixed.items() if v is not None}
        self.fixed = {k: _number_or_named(v, "fixed" if single else f"fixed {k}") for k, v in fixed.items()}

    def _setup(self, data):
        self._covariate_values = self._covariate(data)
        if self.form.groups:
            self._codes, self._labels = self._strata(data)
        else:
            self._codes, self._labels = np.zeros(len(data), dtype=np.int64), []
        nstrata = max(len(self._labels), 1)
        # table[kind, stratum] of unconstrained values; mask of the estimated ones
        self._table = np.zeros((len(self.kinds), nstrata))
        self._free = np.ones((len(self.kinds), nstrata), dtype=bool)
        for k, kind in enumerate(self.kinds):
            self._table[k] = self._unconstrain(
                kind, self._per_stratum(self.values.get(kind), kind, self.defaults[k])
            )
            fixed = self._fixed_for(kind)
            if fixed is not None:
                mask = np.isfinite(fixed)
                self._table[k, mask] = self._unconstrain(kind, fixed[mask])
                self._free[k, mask] = False
        self._start = self._table[self._free]

    def _per_stratum(self, value, kind: str, default: float) -> np.ndarray:
        nstrata = max(len(self._labels), 1)
        if value is None:
            return np.full(nstrata, default)
        if isinstance(value, dict):
            if not self._labels:
                raise ValueError(f"{type(self).__name__}: a {kind} per stratum needs strata in the form")
            unknown = set(value) - set(self._labels)
            if unknown:
                raise ValueError(f"{type(self).__name__}: unknown strata {sorted(unknown)} in {kind}")
            return np.array([value.get(s, default) for s in self._labels])
        return np.full(nstrata, value)

    def _fixed_for(self, kind: str) -> np.ndarray | None:
        """Fixed values of one kind per stratum (NaN where estimated), or None."""
        fixed = self.fixed.get(kind)
        if fixed is None:
            return None
        nstrata = max(len(self._labels), 1)
        if isinstance(fixed, dict):
            out = np.full(nstrata, np.nan)
            for stratum, v in fixed.items():
                if stratum not in self._labels:
                    raise ValueError(f"{type(self).__name__}: unknown stratum {stratum!r} in fixed")
                out[self._labels.index(stratum)] = v
            return out
        return np.full(nstrata, fixed)

    @staticmethod
    def _unconstrain(kind: str, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        if kind == "const":
            if np.any(values <= 0):
                raise ValueError("constant in the variance function must be > 0")
            return np.log(values)
        return values

    def _full_table(self, params):
        table = self._table.copy()
        table[self._free] = np.asarray(params, dtype=float)
        return table

    def coefficients(self, params):
        table = self._full_table(params)
        names, values = [], []
        for k, kind in enumerate(self.kinds):
            row = np.exp(table[k]) if kind == "const" else table[k]
            for s in np.flatnonzero(self._free[k]):
                if self._labels:
                    label = self._labels[s] if len(self.kinds) == 1 else f"{kind}.{self._labels[s]}"
                else:
                    label = kind
                names.append(label)
                values.append(row[s])
        return pd.Series(values, index=names, dtype=float)


class VarPower(_CovariateStrata):
    """Power of a covariate: sd_i = sigma |v_i|^delta (nlme's ``varPower``; reported as ``power``).

    ``value``: starting delta (one number, or ``{stratum: delta}``); ``fixed``: the same, held fixed.
    """

    kinds = ("power",)
    defaults = (0.0,)

    def __init__(self, form: str = "~ fitted(.)", value=None, fixed=None):
        super().__init__(form, {"power": value}, {"power": fixed})

    def log_weights(self, params, fitted=None):
        delta = self._full_table(params)[0][self._codes]
        return -delta * np.log(np.abs(self._values(fitted)))


class VarExp(_CovariateStrata):
    """Exponential of a covariate: sd_i = sigma exp(delta v_i) (nlme's ``varExp``; ``expon``)."""

    kinds = ("expon",)
    defaults = (0.0,)

    def __init__(self, form: str = "~ fitted(.)", value=None, fixed=None):
        super().__init__(form, {"expon": value}, {"expon": fixed})

    def log_weights(self, params, fitted=None):
        delta = self._full_table(params)[0][self._codes]
        return -delta * self._values(fitted)


class VarConstPower(_CovariateStrata):
    """Constant plus power: sd_i = sigma (c + |v_i|^delta) (nlme's ``varConstPower``).

    ``fixed`` may be ``{"const": ..., "power": ...}`` (values or ``{stratum: value}`` dicts).
    """

    kinds = ("const", "power")
    defaults = (0.1, 0.0)

    def __init__(self, form: str = "~ fitted(.)", const=None, power=None, fixed: dict | None = None):
        if fixed is not None:
            check_instance("fixed", fixed, dict, "a dict such as {'power': 0.5}")
        fixed = dict(fixed or {})
        unknown = set(fixed) - {"const", "power"}
        if unknown:
            raise ValueError(f"VarConstPower fixed takes 'const' and 'power', not {sorted(unknown)}")
        super().__init__(form, {"const": const, "power": power}, fixed)

    def log_weights(self, params, fitted=None):
        table = self._full_table(params)
        const = np.exp(table[0])[self._codes]
        power = table[1][self._codes]
        return -np.log(const + np.abs(self._values(fitted)) ** power)


class VarComb(VarFunc):
    """Product of variance functions: ``VarComb(VarIdent("~ 1 | s"), VarPower("~ v"))`` (``varComb``).

    Reported parameters are prefixed with A., B., ... in the order given, as nlme names them.
    """

    def __init__(self, *functions: VarFunc):
        if not functions or not all(isinstance(f, VarFunc) for f in functions):
            raise TypeError("VarComb takes variance functions (VarIdent, VarPower, ...)")
        self.functions = list(functions)
        self._start = np.zeros(0)

    def __repr__(self) -> str:
        return f"VarComb({', '.join(map(repr, self.functions))})"

    @property
    def uses_fitted(self) -> bool:
        return any(f.uses_fitted for f in self.functions)

    @property
    def variables(self) -> list[str]:
        return [v for f in self.functions for v in f.variables]

    def bind(self, data: pd.DataFrame, functions: Mapping[str, Callable] | None = None) -> VarComb:
        bound = copy.copy(self)
        bound.functions = [f.bind(data, functions) for f in self.functions]
        bound._sizes = [f.n_params for f in bound.functions]
        bound._start = np.concatenate([f.initial for f in bound.functions])
        return bound

    def _split(self, params):
        bounds = np.cumsum([0] + self._sizes)
        params = np.asarray(params, dtype=float)
        return [params[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

    def log_weights(self, params, fitted=None):
        return sum(f.log_weights(p, fitted) for f, p in zip(self.functions, self._split(params)))

    def coefficients(self, params):
        parts = []
        for letter, f, p in zip(string.ascii_uppercase, self.functions, self._split(params)):
            c = f.coefficients(p)
            parts.append(pd.Series(c.to_numpy(), index=[f"{letter}.{name}" for name in c.index], dtype=float))
        return pd.concat(parts)
