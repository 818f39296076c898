"""Parsing of lme4-style model formulas.

A formula such as ``y ~ x + (1 + x | g) + (1 | a/b)`` is split into its response, its fixed-effects part
(handed on to formulaic, which materializes it) and its random-effects terms, each a left-hand side
(a model formula for the columns of Z) and a grouping factor.  Like lme4's ``findbars``/``expandSlash``:

* ``(x || g)`` becomes uncorrelated terms ``(1 | g) + (0 + x | g)``, one per term label of ``x`` (so
  ``(a * b || g)`` gives ``a``, ``b`` and ``a:b`` their own terms, as lme4 1.1-31 does);
* ``(x | a/b)`` becomes ``(x | b:a) + (x | a)`` (lme4 names the nested factor ``b:a`` and, as
  ``findbars``, lists the innermost factor first; the order decides lme4's order of tied terms);
* ``(x | a:b)`` groups by the interaction of ``a`` and ``b``;
* ``diag(x | g)``, ``cs(x | g)``, ``ar1(x | g)``, ``toep(x | g)`` and ``us(x | g)`` (the default) give
  the term a structured covariance, with glmmTMB's names.

Each right-hand side is parsed here, once, into an :class:`Rhs` (formulaic's terms in R's order); everything
downstream works on those terms and never parses the text again.  This module never looks at data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

from formulaic.parser import DefaultFormulaParser
from formulaic.parser.types import Factor, Term, Token

from ..errors import FormulaError
from .evaluation import FUNCTIONS, expression_names

__all__ = [
    "RandomTerm",
    "ParsedFormula",
    "Rhs",
    "factor_names",
    "factor_text",
    "formulaic_failure",
    "parse_formula",
    "parse_one_sided",
    "r_expression",
    "r_names",
]


@dataclass(frozen=True)
class RandomTerm:
    """One random-effects term ``(lhs | group)``.

    ``lhs`` is the parsed right-hand side of the term's model matrix (``1 + Days``); ``factors`` are
    the variables whose interaction forms the grouping factor, as written (``"Subject"``, ``"factor(g)"``;
    :attr:`variables` are their columns); ``group`` is lme4's name for that factor;
    ``structure`` names the covariance structure of the term's random effects.
    """

    lhs: Rhs
    factors: tuple[str, ...]
    structure: str = "us"  # covariance structure: us, diag, cs, ar1 or toep (glmmTMB's names)

    @property
    def group(self) -> str:
        return ":".join(self.factors)

    @property
    def variables(self) -> tuple[str, ...]:
        """The columns whose interaction is the grouping factor (``g`` for ``factor(g)``)."""
        return tuple(_grouping_variable(name) or name for name in self.factors)

    @property
    def r_text(self) -> str:
        """The term as R deparses it, without parentheses: ``"1 + Days | Subject"``."""
        return f"{self.lhs.r_text} | {self.group}"

    @property
    def formula_text(self) -> str:
        """The term as written in a formula: ``"(1 + Days | Subject)"``, ``"cs(0 + f | g)"``."""
        return f"{'' if self.structure == 'us' else self.structure}({self.r_text})"


@dataclass(frozen=True)
class ParsedFormula:
    """The pieces of an lme4 formula."""

    text: str
    response: str
    fixed: Rhs  # the fixed-effects right-hand side, e.g. 1 + Days
    random: tuple[RandomTerm, ...]
    offsets: tuple[str, ...]  # expressions inside offset(...)

    def with_random(self, random: tuple[RandomTerm, ...]) -> ParsedFormula:
        """The same formula with other random-effects terms (and its text rebuilt to match)."""
        pieces = [self.fixed.r_text]
        pieces += [f"offset({r_expression(expr)})" for expr in self.offsets]
        pieces += [term.formula_text for term in random]
        text = f"{r_expression(self.response)} ~ {' + '.join(pieces)}"
        return ParsedFormula(text, self.response, self.fixed, tuple(random), self.offsets)


_IDENTIFIER = re.compile(r"^(`[^`]+`|(?!\d)[\w.]+)$")  # R's names, non-ASCII letters included

#: R's functions whose names Python cannot call, and the names they are evaluated by.
_PYTHON_NAMES = {"as.factor": "as_factor", "as.numeric": "as_numeric"}
_R_NAMES = {python: r for r, python in _PYTHON_NAMES.items()}


#: R's logical constants and Python's (``poly(x, 2, raw = TRUE)``).
_PYTHON_LOGICAL = {"TRUE": "True", "FALSE": "False"}
_R_LOGICAL = {python: r for r, python in _PYTHON_LOGICAL.items()}


def _python_names(text: str) -> str:
    """``as.factor(x)`` -> ``as_factor(x)``, ``TRUE`` -> ``True``: R's names as Python can call them."""
    text = re.sub(r"(?<![\w.`])(TRUE|FALSE)(?![\w.`])", lambda m: _PYTHON_LOGICAL[m.group(1)], text)
    return re.sub(r"(?<![\w.])(as\.factor|as\.numeric)(?=\s*\()", lambda m: _PYTHON_NAMES[m.group(1)], text)


def r_names(text: str) -> str:
    """``as_factor(x)`` -> ``as.factor(x)``, ``raw=True`` -> ``raw = TRUE``: the inverse of the translation
    of R's names, spaced as R deparses a keyword argument."""
    text = re.sub(r"(?<![\w.`])(True|False)(?![\w.`])", lambda m: _R_LOGICAL[m.group(1)], text)
    text = re.sub(r"(?<=\w)\s*(?<![=!<>])=(?!=)\s*", " = ", text)
    return re.sub(r"(?<![\w.])(as_factor|as_numeric)(?=\s*\()", lambda m: _R_NAMES[m.group(1)], text)


def _scan_top_level(text: str, separators: tuple[str, ...]) -> list[tuple[str, str]]:
    """Split ``text`` at separators that stand outside parentheses and quotes.

    Returns ``(separator_before, piece)`` pairs; the first piece has separator ``""``.  Longer
    separators must come first in ``separators`` (``"||"`` before ``"|"``).
    """
    pieces: list[tuple[str, str]] = []
    depth = 0
    quote = ""
    start = 0
    before = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"`":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth < 0:
                raise FormulaError(f"unbalanced parentheses in {text!r}")
        elif depth == 0:
            for sep in separators:
                if text.startswith(sep, i):
                    pieces.append((before, text[start:i]))
                    before, start = sep, i + len(sep)
                    i += len(sep) - 1
                    break
        i += 1
    if depth != 0:
        raise FormulaError(f"unbalanced parentheses in {text!r}")
    if quote:
        raise FormulaError(f"unterminated quote in {text!r}")
    pieces.append((before, text[start:]))
    return pieces


def r_expression(text: str) -> str:
    """Formula text as R deparses it: ``^`` for powers, ``+`` and ``-`` spaced (``1+x**2`` -> ``1 + x^2``)."""
    text = re.sub(r"\s*\*\*\s*", "^", r_names(text))
    out = ""
    for sep, piece in _scan_top_level(text, ("+", "-")):
        piece = piece.strip()
        out = f"{out} {sep} {piece}" if out else f"{sep}{piece}"
    return out


def _strip_outer_parens(text: str) -> str | None:
    """Return the inside of ``(...)`` when the parentheses enclose the whole of ``text``."""
    text = text.strip()
    if not (text.startswith("(") and text.endswith(")")):
        return None
    depth = 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and i < len(text) - 1:
            return None
    return text[1:-1]


def _r_to_python(expr: str, arithmetic: bool = False) -> str:
    """Translate R's power ``^`` to Python's ``**`` where R reads it as arithmetic.

    That is inside function calls (``I(x^2)``, ``log(x^2)``) and, with ``arithmetic``, everywhere (a
    response or an offset); elsewhere in a formula ``(a + b)^2`` is crossing, which formulaic also reads.
    """
    out: list[str] = []
    calls: list[bool] = []  # for each open parenthesis: does it belong to a function call?
    quote = ""
    for i, ch in enumerate(expr):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"`":
            quote = ch
        elif ch == "(":
            calls.append(bool(re.search(r"[\w.]\s*$", expr[:i])))
        elif ch == ")" and calls:
            calls.pop()
        elif ch == "^" and (arithmetic or any(calls)):
            ch = "**"
        out.append(ch)
    return _python_names("".join(out))


_FACTOR_CALL = re.compile(r"(?:as\.)?factor\(\s*(.+?)\s*\)")


def _grouping_variable(name: str) -> str | None:
    """The column of a grouping factor written ``g``, ```my g```, ``factor(g)`` or ``as.factor(g)``;
    None when it is none of these."""
    call = _FACTOR_CALL.fullmatch(name)
    name = call.group(1) if call else name
    return name.strip("`") if _IDENTIFIER.match(name) else None


def _grouping_name(name: str) -> str:
    """lme4's name of a grouping variable: ``g`` for ```g```, ``factor(g)`` for ``factor( g )``."""
    call = _FACTOR_CALL.fullmatch(name)
    return f"{name[: name.index('(')].strip()}({call.group(1)})" if call else name.strip("`")


def _parse_grouping(text: str, term: str) -> list[tuple[str, ...]]:
    """Grouping factors of ``a``, ``a:b`` or ``a/b/c`` (expanded as lme4's expandSlash does, innermost
    first: ``a/b/c`` gives ``c:b:a``, ``b:a``, ``a``)."""
    inner = _strip_outer_parens(text)
    nested = [p for _, p in _scan_top_level(text if inner is None else inner, ("/",))]
    levels: list[tuple[str, ...]] = []
    for piece in nested:
        inner = _strip_outer_parens(piece)
        piece = inner if inner is not None else piece
        names = tuple(part.strip() for _, part in _scan_top_level(piece, (":",)))
        for name in names:
            if _grouping_variable(name) is None:
                raise FormulaError(
                    f"grouping factor {name!r} in ({term}) must be a column name or factor(column); make a "
                    "column for it (interactions are written a:b, nested factors a/b)"
                )
        levels.append(tuple(_grouping_name(n) for n in names))
    # a/b/c -> c:b:a, b:a, a  (lme4 puts the innermost factor first in the name and in the list)
    groups = []
    for k in range(len(levels)):
        combined: tuple[str, ...] = ()
        for part in reversed(levels[: k + 1]):
            combined += part
        groups.append(combined)
    return groups[::-1]


def formulaic_failure(what: str, exc: Exception) -> FormulaError:
    """A FormulaError for formulaic's ``exc`` about ``what``: its first line, without terminal colours."""
    cause = exc
    while cause is not None and not isinstance(cause, FormulaError):  # ours, raised inside formulaic
        cause = cause.__cause__ or cause.__context__
    lines = re.sub(r"\x1b\[[0-9;]*m", "", str(cause or exc)).strip().splitlines()
    return FormulaError(f"{what}: {lines[0] if lines else type(exc).__name__}")


def factor_text(factor: Factor) -> str:
    """A formulaic factor as formula text: backticks around column names that need them, braces around
    Python expressions other than one call (``{x + 1}``)."""
    if factor.eval_method is Factor.EvalMethod.LOOKUP and not _IDENTIFIER.match(factor.expr):
        return f"`{factor.expr}`"
    if factor.eval_method is Factor.EvalMethod.PYTHON:
        call = re.match(r"[\w.]+\s*(?=\()", factor.expr)
        if call is None or _strip_outer_parens(factor.expr[call.end() :]) is None:
            return f"{{{factor.expr}}}"
    return factor.expr


def factor_names(factors: Iterable[Factor]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Variables and functions beyond :data:`~mixedmodels.formula.evaluation.FUNCTIONS` that formulaic
    factors use; a FormulaError when a Python expression among them holds anything a formula may not
    (the safety check of :func:`~mixedmodels.formula.evaluation.expression_names`)."""
    variables: dict[str, None] = {}
    functions: dict[str, None] = {}
    for factor in factors:
        if factor.eval_method is Factor.EvalMethod.LOOKUP:
            variables[factor.expr] = None
        elif factor.eval_method is Factor.EvalMethod.PYTHON:
            names, calls = expression_names(factor.expr)
            variables.update(dict.fromkeys(sorted(names)))
            functions.update(dict.fromkeys(sorted(calls - set(FUNCTIONS))))
    return tuple(variables), tuple(functions)


_SIMPLE_NAME = re.compile(r"^(?!\d)\w+$")


@dataclass(frozen=True)
class Rhs:
    """A right-hand side parsed once (:meth:`parse`): its text in formulaic's syntax (for messages and, as
    :attr:`r_text`, for R's display), whether it has an intercept, and formulaic's factors of each of its
    other terms as R's ``terms()`` has them: by degree, then as the expanded formula lists them, a term's
    variables in the order they first appear in the formula (``meanses * cses + sector * cses`` has
    ``cses:sector``), which decides the names and order of the columns of R's ``model.matrix``.

    Two right-hand sides are equal when their texts are (the text decides the terms).
    """

    text: str
    intercept: bool = field(compare=False)
    terms: tuple[tuple[Factor, ...], ...] = field(compare=False)

    @classmethod
    def parse(cls, text: str, what: str) -> Rhs:
        """The terms of ``text`` in one pass of formulaic's parser; a FormulaError naming ``what`` when it
        cannot parse."""
        parser = DefaultFormulaParser()
        context: dict = {}
        try:
            tokens = list(parser.get_tokens_from_formula(text, context=context))
            order: dict[str, int] = {}  # each variable -> its place in R's terms(): first appearance
            for token in tokens:
                if token.kind in (Token.Kind.NAME, Token.Kind.PYTHON):
                    order.setdefault(token.to_factor().expr, len(order))
            ast = parser.get_ast_from_tokens(tokens, context=context)
            parsed = list(parser.get_terms_from_ast(ast, context=context).root)
            if not all(isinstance(term, Term) for term in parsed):
                raise FormulaError(f"{text!r} is not a single right-hand side")
        except Exception as exc:  # formulaic raises several exception types for bad syntax
            raise formulaic_failure(f"cannot parse {what}", exc) from exc
        factors = [
            tuple(sorted(term.factors, key=lambda f: order.get(f.expr, len(order))))
            for term in sorted(parsed, key=lambda term: term.degree)  # formulaic's order of terms
        ]
        intercept = [f for f in factors if [factor.expr for factor in f] == ["1"]]
        return cls(text, bool(intercept), tuple(f for f in factors if f not in intercept))

    @classmethod
    def of_terms(cls, intercept: bool, terms: tuple[tuple[Factor, ...], ...]) -> Rhs:
        """The right-hand side of terms already parsed, written ``1 + a + b:c`` (``0 + a`` without the
        intercept, ``1`` for the intercept alone)."""
        labels = [":".join(factor_text(f) for f in term) for term in terms]
        text = " + ".join(["1" if intercept else "0", *labels]) if labels else "1" if intercept else "0"
        return cls(text, intercept, tuple(terms))

    @property
    def r_text(self) -> str:
        """The text as R deparses it (``1 + x^2``)."""
        return r_expression(self.text)

    @property
    def labels(self) -> tuple[tuple[str, ...], ...]:
        """Each term's variables as formula text: ``a * b`` gives ``(("a",), ("b",), ("a", "b"))``."""
        return tuple(tuple(factor_text(f) for f in term) for term in self.terms)

    @cached_property
    def names(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(variables, functions) of the terms (:func:`factor_names`), checked safe once."""
        return factor_names(factor for term in self.terms for factor in term)

    @cached_property
    def simple_columns(self) -> tuple[str, ...] | None:
        """The column names when every term is one plain column (a model matrix built without formulaic,
        given numeric columns), else None."""
        names = []
        for term in self.terms:
            if len(term) != 1 or term[0].eval_method is not Factor.EvalMethod.LOOKUP:
                return None
            if not _SIMPLE_NAME.match(term[0].expr):
                return None
            names.append(term[0].expr)
        return tuple(names)


STRUCTURES = ("us", "diag", "cs", "ar1", "toep")


def _random_terms(inner: str, structure: str = "us") -> list[RandomTerm]:
    parts = _scan_top_level(inner, ("||", "|"))
    if len(parts) != 2:
        raise FormulaError(f"random-effects term ({inner}) must have the form (expr | group)")
    lhs, (bar, grouping) = parts[0][1].strip(), parts[1]
    if not lhs:
        raise FormulaError(
            f"random-effects term ({inner}) has nothing left of the bar (use 1 for an intercept)"
        )
    if not grouping.strip():
        raise FormulaError(f"random-effects term ({inner}) has no grouping factor after the bar")
    lhs = _r_to_python(lhs)
    groups = _parse_grouping(grouping.strip(), inner)
    if bar == "|":
        parsed = Rhs.parse(lhs, repr(lhs))
        return [RandomTerm(parsed, factors, structure) for factors in groups]
    if structure != "us":
        raise FormulaError(f"{structure}({inner}): a covariance structure takes a single bar, (expr | group)")
    # lme4's expandDoubleVert: 1 (unless removed) and 0 + label for each of R's term labels
    parsed = Rhs.parse(lhs, f"({inner})")
    lhss = [Rhs.of_terms(True, ())] * parsed.intercept
    lhss += [Rhs.of_terms(False, (term,)) for term in parsed.terms]
    if not lhss:
        raise FormulaError(f"random-effects term ({inner}) has no effects")
    # lme4 expands the double bar first, then the slash of each resulting term
    return [RandomTerm(one, factors) for one in lhss for factors in groups]


def _structured_term(piece: str) -> tuple[str, str]:
    """``("cs", "(x | g)")`` for ``cs(x | g)``; ``("us", piece)`` for anything else (a call such as
    ``cs(x)`` without a bar stays a fixed-effects term, where an unknown function is an error).
    Another name before a bar term, ``xyz(1 | g)``, is an unknown structure: an error naming it."""
    call = re.fullmatch(r"([\w.]+)\s*(\(.*\))", piece, flags=re.S)
    if call and call.group(1) != "I":  # I(a | b) is arithmetic (or of logicals)
        inside = _strip_outer_parens(call.group(2))
        if inside is not None and len(_scan_top_level(inside, ("||", "|"))) > 1:
            if call.group(1) not in STRUCTURES:
                raise FormulaError(
                    f"unknown covariance structure {call.group(1)!r} in {piece!r}; the structures are "
                    f"{', '.join(STRUCTURES)}, e.g. diag(x | g), or none: (x | g)"
                )
            return call.group(1), call.group(2)
    return "us", piece


def parse_formula(text: str) -> ParsedFormula:
    """Split an lme4 formula into response, fixed part, random terms and offsets."""
    if not isinstance(text, str):
        raise TypeError(f"formula must be a string such as 'y ~ x + (1 | g)', got {type(text).__name__}")
    return _parse_formula(text)


@lru_cache(maxsize=512)
def _parse_formula(text: str) -> ParsedFormula:
    """:func:`parse_formula` of a string, remembered: the result is immutable and depends on the text only."""
    sides = _scan_top_level(text, ("~",))
    if len(sides) != 2:
        problem = "has no '~'" if len(sides) < 2 else "has more than one '~'"
        raise FormulaError(f"formula {text!r} {problem}; write it as 'response ~ terms'")
    response, rhs = sides[0][1].strip(), sides[1][1].strip()
    if not response:
        raise FormulaError(f"formula {text!r} has no response left of '~'")
    return _parse_rhs(text, _r_to_python(response, arithmetic=True), rhs)


def parse_one_sided(text: str) -> ParsedFormula:
    """A one-sided formula, ``"~ (1 | g) + (0 + x | h)"`` (the ``~`` may be left out), as terms with no
    response: ``predict``'s ``re_form`` and nlme's ``random=``.  As in R, where a bar binds loosest,
    ``"~ 1 + x | g"`` is the single random-effects term ``(1 + x | g)`` (nlme's way of writing it)."""
    body = text.strip()
    body = body[1:].strip() if body.startswith("~") else body
    if len(_scan_top_level(body, ("||", "|"))) > 1:
        return ParsedFormula(text, "", Rhs.of_terms(True, ()), tuple(_random_terms(body)), ())
    return _parse_rhs(text, "", body)


def _parse_rhs(text: str, response: str, rhs: str) -> ParsedFormula:
    """The formula ``text`` with its ``response`` (Python syntax) and its right-hand side ``rhs`` split
    into fixed part, random terms and offsets."""
    if not rhs:
        raise FormulaError(f"formula {text!r} has no terms right of '~'")
    fixed: list[str] = []
    random: list[RandomTerm] = []
    offsets: list[str] = []
    for sep, piece in _scan_top_level(rhs, ("+", "-")):
        piece = piece.strip()
        if not piece:
            if sep or fixed or random:
                raise FormulaError(f"formula {text!r} has an empty term")
            continue
        structure, bracketed = _structured_term(piece)
        inner = _strip_outer_parens(bracketed)
        if inner is not None and len(_scan_top_level(inner, ("||", "|"))) > 1:
            if sep == "-":
                raise FormulaError(f"cannot subtract a random-effects term in {text!r}")
            random.extend(_random_terms(inner, structure))
            continue
        if "|" in piece and inner is None and len(_scan_top_level(piece, ("||", "|"))) > 1:
            raise FormulaError(f"random-effects term {piece!r} must be enclosed in parentheses")
        if piece == ".":
            raise FormulaError(f"'.' (all other columns) is not supported in {text!r}; name the columns")
        offset = re.fullmatch(r"offset\((.*)\)", piece, flags=re.S)
        if offset and sep != "-":
            offsets.append(_r_to_python(offset.group(1).strip(), arithmetic=True))
            continue
        fixed.append(f"{sep} {_r_to_python(piece)}" if fixed or sep == "-" else _r_to_python(piece))
    if not fixed:  # the intercept alone
        return ParsedFormula(text, response, Rhs.of_terms(True, ()), tuple(random), tuple(offsets))
    fixed_text = " ".join(fixed)
    if fixed_text.startswith("-"):
        fixed_text = "1 " + fixed_text
    fixed_rhs = Rhs.parse(fixed_text, repr(fixed_text))
    return ParsedFormula(text, response, fixed_rhs, tuple(random), tuple(offsets))
