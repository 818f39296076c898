"""MCMCglmm's model syntax: ``random=~us(1 + x):g + h`` and ``rcov=~units`` as the engine's terms.

MCMCglmm writes a random-effects term as ``structure(formula):group``; each becomes an lme4 term on the
same grouping factor, so one model frame (and one blocked factor) serves both syntaxes:

=====================  ========================  ==============================================
MCMCglmm               lme4 / glmmTMB             covariance of one group's effects
=====================  ========================  ==============================================
``g``                  ``(1 | g)``                one variance
``us(1 + x):g``        ``(1 + x | g)``            unstructured
``idh(1 + x):g``       ``diag(1 + x | g)``        one variance per column, no correlations
``corh(f):g``          ``cs(0 + f | g)``          one variance per column, one common correlation
``cor(f):g``           ``(0 + f | g)``            correlations only: every variance fixed at 1
=====================  ========================  ==============================================

As in MCMCglmm the formula inside a structure has no implicit intercept: ``us(sex):dam`` is
``(0 + sex | dam)``, one effect per sex; write ``us(1 + x)`` for an intercept.  ``rcov`` is ``~units``
(one residual variance) or ``~idh(f):units`` (one residual variance per level of the factor ``f``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...errors import FormulaError
from ...formula.parse import _scan_top_level, parse_formula

__all__ = ["SamplerTerm", "mcmc_terms", "residual_groups", "STRUCTURES"]

#: MCMCglmm's structures and the glmmTMB structure of the lme4 term each becomes
STRUCTURES = {"us": "us", "idh": "diag", "corh": "cs", "cor": "us", "corg": "us"}

_NAME = r"(?:`[^`]+`|[A-Za-z.][\w.]*)"
_GROUP = re.compile(rf"^{_NAME}(?:\s*:\s*{_NAME})*$")
_STRUCTURED = re.compile(r"^([A-Za-z]\w*)\s*\((.*)\)\s*:\s*(.+)$", flags=re.S)


@dataclass(frozen=True)
class SamplerTerm:
    """One G structure: its MCMCglmm text, its covariance structure and the lme4 term it stands for."""

    text: str  # as written, e.g. "us(1 + Days):Subject"
    structure: str  # "us", "idh", "corh" or "cor"; a bare grouping factor is "us" of one column
    lme4_term: str  # e.g. "(1 + Days | Subject)"
    bare: bool  # written as a bare grouping factor (``~line``): its VCV column is named by the group


def _one_sided(text: str, what: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"{what} must be a one-sided formula string such as '~us(1 + x):g', not {text!r}")
    body = text.strip()
    if not body.startswith("~") or not body[1:].strip():
        raise FormulaError(f"{what}={text!r} must be a one-sided formula such as '~g' or '~us(1 + x):g'")
    return body[1:].strip()


def _inner_formula(inner: str, text: str) -> str:
    """The structure's formula with MCMCglmm's convention: no intercept unless written."""
    pieces = [piece.strip() for _, piece in _scan_top_level(inner, ("+", "-"))]
    if not inner.strip() or not any(pieces):
        raise FormulaError(f"random term {text!r} has an empty formula inside its structure")
    if "1" in pieces or "0" in pieces:
        return inner.strip()
    return f"0 + {inner.strip()}"


def mcmc_terms(random: str | None) -> list[SamplerTerm]:
    """The G structures of MCMCglmm's ``random`` formula, in the order written."""
    if random is None:
        return []
    body = _one_sided(random, "random")
    terms = []
    for sep, piece in _scan_top_level(body, ("+",)):
        piece = piece.strip()
        if not piece:
            raise FormulaError(f"random={random!r} has an empty term")
        call = _STRUCTURED.match(piece)
        if call:
            name, inner, group = call.group(1), call.group(2), call.group(3).strip()
            if name not in STRUCTURES:
                raise FormulaError(
                    f"unknown variance structure {name!r} in {piece!r}; the structures are "
                    "us, idh, corh and cor (e.g. us(1 + x):g), or a bare grouping factor (~g)"
                )
            if not _GROUP.match(group):
                raise FormulaError(f"random term {piece!r}: {group!r} is not a grouping factor")
            structure = "cor" if name == "corg" else name
            lhs = _inner_formula(inner, piece)
            prefix = "" if STRUCTURES[name] == "us" else STRUCTURES[name]
            terms.append(SamplerTerm(piece, structure, f"{prefix}({lhs} | {group})", bare=False))
        elif _GROUP.match(piece):
            terms.append(SamplerTerm(piece, "us", f"(1 | {piece})", bare=True))
        else:
            raise FormulaError(
                f"random term {piece!r} is not MCMCglmm syntax: write a grouping factor (g, a:b) or "
                "structure(formula):group, e.g. us(1 + x):g"
            )
    seen = set()
    for term in terms:
        if term.lme4_term in seen:
            raise FormulaError(f"random={random!r} has the term {term.text!r} twice")
        seen.add(term.lme4_term)
    return terms


def residual_groups(rcov: str) -> str | None:
    """The factor whose levels have their own residual variance (``~idh(f):units``), None for ``~units``."""
    body = _one_sided(rcov, "rcov")
    if body == "units":
        return None
    call = _STRUCTURED.match(body)
    if call and call.group(1) == "idh" and call.group(3).strip() == "units":
        inner = call.group(2).strip()
        if re.fullmatch(_NAME, inner):
            return inner
    raise FormulaError(
        f"rcov={rcov!r} is not supported: use ~units (one residual variance) or ~idh(f):units (one per "
        "level of the factor f)"
    )


def lme4_formula(fixed: str, terms: list[SamplerTerm]) -> str:
    """The lme4 formula of the fixed part and the G structures (what the model frame is built from)."""
    parsed = parse_formula(fixed)
    if parsed.random:
        raise FormulaError(
            f"the fixed formula {fixed!r} has random-effects terms and random= is given too: use one syntax"
        )
    if not terms:
        return fixed
    return f"{fixed} + {' + '.join(term.lme4_term for term in terms)}"
