"""Compound-scaling search (EfficientNet, Tan & Le 2019, Eq. 3; EfficientDet Sec. 4.2): sample the
coefficients alpha (depth), beta (width), gamma (resolution) and phi, then derive::

    product    = alpha * beta^2 * gamma^2       accepted when |product - target| <= tolerance; else the
                                                `solve_for` coefficient is solved from product = target
                                                (a repair), or the point is rejected if that leaves its range
    width      = round_to(width_multiple, base_width * beta^phi)
    repeats    = round(base_repeats * alpha^phi)            (at least 1)
    head_depth = round(base_head_depth * alpha^phi)         (at least 1)
    resolution = round_to(resolution_multiple, base_resolution * gamma^phi)
    backbone   = backbones[phi];  fusion = one of `fusions` (sampled, where listed)

``round`` takes halves up; ``round_to(m, x)`` is the nearest multiple of ``m`` (halves up), at least ``m``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass

from effdet_graph import detector_config
from effdet_graph.model import builtin_scaling
from graphspec.errors import quote
from graphspec.model import FUSIONS
from graphspec.reader import FloatRange, IntRange, Reader
from search.sampling.candidate import Draft
from search.sampling.rejection import InvalidPoint
from search.sampling.trial import TrialLike
from search.space.detector import read_backbone, spec_params
from search.space.schema import CONSTRAINT_KEYS
from search.space.template import Template

KEYS = {
    "coefficients": True,
    "constraint": True,
    "phi": True,
    "base": True,
    "multiples": False,
    "backbones": True,
    "fusions": False,
}
EXPONENTS = {"alpha": 1, "beta": 2, "gamma": 2}
BASE_KEYS = ("width", "repeats", "head_depth", "resolution")
DEFAULT_MULTIPLES = {"width": 8, "resolution": 128}


def round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


def round_to(multiple: int, x: float) -> int:
    """The nearest multiple of ``multiple`` to ``x`` (halves up), at least ``multiple``."""
    return max(multiple, multiple * round_half_up(x / multiple))


@dataclass(frozen=True)
class CompoundChoices:
    """A compound-scaling search space (see the module docstring for the formulas)."""

    coefficients: dict[str, FloatRange]
    target: float
    tolerance: float
    solve_for: str | None
    phi: IntRange
    base: dict[str, int]
    multiples: dict[str, int]
    backbones: tuple[str, ...]
    fusions: tuple[str, ...]
    num_classes: int

    def coefficients_on_constraint(self, values: dict[str, float]) -> tuple[dict[str, float], tuple[str, ...]]:
        """``values`` as they are if they meet the constraint, else repaired; raises :class:`InvalidPoint`."""
        product = math.prod(values[name] ** e for name, e in EXPONENTS.items())
        if abs(product - self.target) <= self.tolerance:
            return values, ()
        off = f"alpha * beta^2 * gamma^2 = {product:.4f} is off {self.target} by more than {self.tolerance}"
        if self.solve_for is None:
            raise InvalidPoint(off)
        name, exponent = self.solve_for, EXPONENTS[self.solve_for]
        solved = (self.target * values[name] ** exponent / product) ** (1 / exponent)
        allowed = self.coefficients[name]
        if solved not in allowed:
            raise InvalidPoint(
                f"{off}, and meeting it needs {name} = {solved:.4f}, outside [{allowed.low}, {allowed.high}]"
            )
        return values | {name: solved}, (f"{off}: {name} {values[name]:.4f} -> {solved:.4f}",)

    def draw(self, template: Template, trial: TrialLike) -> Draft:
        suggested = {name: trial.suggest_float(name, r.low, r.high) for name, r in self.coefficients.items()}
        values, repairs = self.coefficients_on_constraint(suggested)
        phi = trial.suggest_int("phi", self.phi.low, self.phi.high)
        fusion = trial.suggest_categorical("fusion", list(self.fusions)) if self.fusions else None
        return self.draft(template, values, phi, fusion, repairs)

    def draft(
        self,
        template: Template,
        values: dict[str, float],
        phi: int,
        fusion: object = None,
        repairs: tuple[str, ...] = (),
    ) -> Draft:
        """The candidate of coefficients ``values`` at ``phi`` with ``fusion`` (``None``: the template's), by the
        formulas of the module docstring; the constraint is not checked here."""
        alpha_phi, beta_phi, gamma_phi = (values[name] ** phi for name in ("alpha", "beta", "gamma"))
        sampled: dict[str, object] = {
            "width": round_to(self.multiples["width"], self.base["width"] * beta_phi),
            "repeats": max(1, round_half_up(self.base["repeats"] * alpha_phi)),
        }
        if fusion is not None:
            sampled["fusion"] = fusion
        row = detector_config(phi, self.backbones[phi], self.num_classes)
        detector = dataclasses.replace(
            row,
            head=dataclasses.replace(row.head, depth=max(1, round_half_up(self.base["head_depth"] * alpha_phi))),
            resolution=round_to(self.multiples["resolution"], self.base["resolution"] * gamma_phi),
        )
        return Draft(spec_params(template.spec, phi, sampled), detector, repairs=repairs)

    def smallest_drafts(self, template: Template) -> Iterator[tuple[str, Draft]]:
        """For each phi (ascending) and fusion, the point with every coefficient at its low end, described.

        Width, repeats, head depth and resolution grow with each coefficient (``x^phi`` with ``phi >= 0``), and
        params and MACs with them, so no point of that phi and fusion costs less: a budget none of these meets,
        no point meets. (The constraint is ignored: it can only rule points out.)
        """
        lows = {name: r.low for name, r in self.coefficients.items()}
        for phi in range(self.phi.low, self.phi.high + 1):
            for fusion in self.fusions or (None,):
                shown = f"phi {phi}" + ("" if fusion is None else f", fusion {quote(fusion)}")
                yield shown, self.draft(template, lows, phi, fusion)

    def product_range(self) -> tuple[float, float]:
        """The least and greatest alpha * beta^2 * gamma^2 over the coefficient ranges (it grows with each)."""
        ends = [
            math.prod(getattr(r, end) ** EXPONENTS[n] for n, r in self.coefficients.items()) for end in ("low", "high")
        ]
        return ends[0], ends[1]

    def unmeetable(self) -> str | None:
        """Why no sampled point can meet the constraint (accepted or repaired), or ``None``; the reason is one
        phrase about the target (``out of reach ...``).

        The product takes every value between its least and greatest (:meth:`product_range`). A point is accepted
        within ``tolerance`` of the target, and repaired (``solve_for``) only to the target itself, so some point
        is usable iff ``[target - tolerance, target + tolerance]`` meets the reachable range; with a range of
        positive width the overlap must have positive width too, or a sampled point meets it with probability 0
        (e.g. ``tolerance: 0`` without ``solve_for``).
        """
        low, high = self.product_range()
        reach = f"alpha * beta^2 * gamma^2 takes values in [{low:.6g}, {high:.6g}] over the `coefficients` ranges"
        lo, hi = self.target - self.tolerance, self.target + self.tolerance
        if low == high:
            usable = lo <= low <= hi
        elif self.solve_for is not None:
            usable = lo < high and hi > low and (self.tolerance > 0 or low < self.target < high)
        else:
            usable = lo < high and hi > low and self.tolerance > 0
        if usable:
            return None
        if self.tolerance == 0 and self.solve_for is None and low < self.target < high:
            return (
                f"{reach}, and with tolerance 0 and no `solve_for` a sampled point almost never meets it "
                "exactly; give a tolerance > 0 or `solve_for`"
            )
        return (
            f"out of reach (tolerance {self.tolerance!r}): {reach}, so every point would be rejected; "
            "change `product` or widen the ranges"
        )


def read(reader: Reader, template: Template, num_classes: int) -> CompoundChoices:
    """The compound-scaling keys of a search-space file (``KEYS``)."""
    reader.mapping(("coefficients",), {name: True for name in EXPONENTS}, "`coefficients`")
    coefficients = {name: reader.float_range(("coefficients", name), low=1e-9) for name in EXPONENTS}
    reader.mapping(("constraint",), CONSTRAINT_KEYS, "`constraint`")
    solve_for = reader.choice(("constraint", "solve_for"), list(EXPONENTS), default=None)
    phis = builtin_scaling().phis
    phi = reader.int_range(("phi",), phis[0], phis[-1])
    reader.mapping(("base",), {key: True for key in BASE_KEYS}, "`base`")
    base = {key: reader.integer(("base", key), low=1) for key in BASE_KEYS}
    reader.mapping(("multiples",), {key: False for key in DEFAULT_MULTIPLES}, "`multiples`", optional=True)
    multiples = {key: reader.integer(("multiples", key), low=1, default=d) for key, d in DEFAULT_MULTIPLES.items()}
    backbones = reader.get(("backbones",))
    if not isinstance(backbones, list) or len(backbones) <= phi.high:
        raise reader.fail(
            f"`backbones` must list one timm backbone per phi 0..{phi.high} (backbone = "
            f"backbones[phi]), got {quote(backbones)}",
            ("backbones",),
        )
    fusions = reader.choices(("fusions",), FUSIONS, default=())
    if fusions and "fusion" not in template.spec.params:
        raise reader.fail(
            f"`fusions` needs a template that declares a `fusion` parameter; {template.path} "
            f"declares {', '.join(template.spec.params)}",
            ("fusions",),
        )
    choices = CompoundChoices(
        coefficients=coefficients,
        target=reader.number(("constraint", "product"), low=1e-9),
        tolerance=reader.number(("constraint", "tolerance"), low=0),
        solve_for=solve_for,
        phi=phi,
        base=base,
        multiples=multiples,
        backbones=tuple(read_backbone(reader, ("backbones", i)) for i in range(len(backbones))),
        fusions=fusions,
        num_classes=num_classes,
    )
    unmeetable = choices.unmeetable()
    if unmeetable:
        raise reader.fail(f"`constraint.product` {choices.target!r}: {unmeetable}", ("constraint", "product"))
    return choices
