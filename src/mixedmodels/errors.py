"""The library's errors and warnings, and the argument checks that raise them.

Every error mixedmodels raises on bad input is a ``TypeError``, ``ValueError`` or ``KeyError`` -- or one
of the ``ValueError`` subclasses below -- whose message names the argument or column and what is wrong
with it, so that ``except ValueError`` catches every problem with the data, the formula or a setting:

* ``TypeError``: an argument of the wrong kind (``reml="no"``, ``nsim=2.5``, ``control="fast"``);
* ``ValueError``: a wrong value (an unknown column, ``level=1.5``, weights of the wrong length, ...);
* :class:`FormulaError`: a formula that cannot be right (syntax, unknown functions, bad random terms);
* :class:`FitError`: the model cannot be fitted to these data, or a result cannot be computed at the
  fit (a singular system, a covariance that is not positive definite, iterations that do not settle);
* ``KeyError``: an unknown name looked up in a collection (``mm.datasets.load("nope")``).

Warnings: :class:`ConvergenceWarning` (the optimizer's result may not be an optimum, as lme4's
``checkConv``) and :class:`ModelMessage` (what lme4 prints as a message, e.g. dropped columns).

The ``check_*`` functions validate one kind of argument each, so that every function words the same
problem the same way.
"""

from __future__ import annotations

import math
import numbers
import reprlib
from collections.abc import Callable, Hashable, Sequence

import numpy as np
import pandas as pd

__all__ = [
    "ConvergenceWarning",
    "FitError",
    "FormulaError",
    "ModelMessage",
    "check_choice",
    "check_flag",
    "check_instance",
    "check_integer",
    "check_names",
    "check_numbers",
    "check_positive",
    "check_probability",
    "check_real",
    "check_seed",
]


class ConvergenceWarning(UserWarning):
    """The optimizer's result may not be a proper optimum."""


class FormulaError(ValueError):
    """A model formula that cannot be right."""


class FitError(ValueError):
    """The model cannot be fitted to these data, or a result cannot be computed at the fit."""


class ModelMessage(UserWarning):
    """Information lme4 prints as a message (e.g. dropped rank-deficient columns)."""


def check_flag(name: str, value, allow_none: bool = False) -> bool | None:
    """``value`` as a bool; anything but True or False (or None when allowed) is a TypeError.

    A string such as ``"no"`` is refused rather than read by its truth value (``bool("no")`` is True).
    """
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    expected = "True, False or None" if allow_none else "True or False"
    raise TypeError(f"{name} must be {expected}, not {value!r}")


def check_integer(name: str, value, minimum: int = 1) -> int:
    """``value`` as an int of at least ``minimum``; floats (even 2.0) and bools are refused."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, not {value}")
    return int(value)


def check_real(name: str, value, finite: bool = False) -> float:
    """``value`` as a float; it must be a real number (not a bool, a string or NaN; nor infinite when
    ``finite``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, not {value!r}")
    if math.isnan(value):
        raise ValueError(f"{name} must be a number, not NaN")
    if finite and math.isinf(value):
        raise ValueError(f"{name} must be a finite number, not {value!r}")
    return float(value)


def check_numbers(name: str, value, finite: bool = False) -> np.ndarray:
    """``value`` (a number or an array of them) as floats; anything else is a TypeError naming ``name``,
    and so are NaN or infinite values when ``finite``."""
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be numeric, not {reprlib.repr(value)}") from None
    if finite and not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite numbers, not {reprlib.repr(value)}")
    return array


def check_probability(name: str, value) -> float:
    """A number strictly between 0 and 1: a confidence level, a significance level."""
    value = check_real(name, value)
    if not 0 < value < 1:
        raise ValueError(f"{name} must be between 0 and 1, not {value!r}")
    return value


def check_positive(name: str, value, allow_zero: bool = False) -> float:
    """A finite number greater than 0 (or equal to it when ``allow_zero``): a tolerance, a step."""
    value = check_real(name, value)
    if not (0 <= value if allow_zero else 0 < value) or math.isinf(value):
        sign = "a non-negative" if allow_zero else "a positive"
        raise ValueError(f"{name} must be {sign} finite number, not {value!r}")
    return value


def check_choice(name: str, value, choices: Sequence, canonical: Callable[[str], str] | None = None):
    """``value`` if it is one of ``choices``; ``canonical`` maps a string to its spelling in ``choices``
    first (``str.lower`` makes the choice case-insensitive)."""
    key = canonical(value) if canonical is not None and isinstance(value, str) else value
    if isinstance(key, Hashable) and not isinstance(key, (bool, np.bool_)) and key in choices:
        return key
    raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, not {value!r}")


def check_names(name: str, value) -> list[str]:
    """One name or a list of names (of columns, of terms) as a list of strings."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (Sequence, np.ndarray, pd.Index)) or not all(isinstance(v, str) for v in names):
        raise TypeError(f"{name} must be a name or a list of names, not {value!r}")
    return list(names)


def check_instance(name: str, value, kind: type | tuple[type, ...], expected: str):
    """``value`` if it is a ``kind``; otherwise a TypeError saying it must be ``expected``."""
    if not isinstance(value, kind):
        raise TypeError(f"{name} must be {expected}, not {type(value).__name__}")
    return value


def check_seed(seed) -> int | np.random.SeedSequence | None:
    """A seed of random numbers: None (fresh entropy), an integer >= 0 or a NumPy ``SeedSequence``."""
    if seed is None or isinstance(seed, np.random.SeedSequence):
        return seed
    return check_integer("seed", seed, minimum=0)
