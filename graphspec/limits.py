"""Resource limits of a spec, checked from the cost model before anything is allocated.

The spec language bounds its integers (:data:`MAX_WIDTH`, :data:`MAX_REPEATS`, :data:`MAX_NODES`; levels
go up to ``P12``), and a spec must also fit :class:`Limits`: at most ``max_params`` parameters and at most
``max_activation_mb`` MiB of activations (fp32, one image, see :mod:`graphspec.cost`) at ``input_size``.
The defaults are :data:`DEFAULT_MAX_PARAMS` and :data:`DEFAULT_MAX_ACTIVATION_MB` at a 512 x 512 input;
the environment variables :data:`ENV_MAX_PARAMS` and :data:`ENV_MAX_ACTIVATION_MB` change them, and
``effdet-graph build``/``validate`` take ``--max-params`` and ``--max-activation-mb``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from graphspec.errors import ConfigError, Location, SpecError, quote

if TYPE_CHECKING:
    from graphspec.model import Spec

MAX_WIDTH = 16384
"""The largest ``width`` (channels) a spec may ask for."""
MAX_REPEATS = 128
"""The most cell repeats."""
MAX_NODES = 256
"""The most nodes in a cell."""
DEFAULT_MAX_PARAMS = 200_000_000
"""Default parameter limit: 200 million (800 MB of fp32 weights; the built-in specs at EfficientDet-D7
sizes have under 30 million)."""
DEFAULT_MAX_ACTIVATION_MB = 16384
"""Default activation limit in MiB (16 GiB; fp32, one image) at the checked input size."""
DEFAULT_INPUT_SIZE = 512
"""The image size (square) a spec is checked at when no other is given."""
ENV_MAX_PARAMS = "EFFDET_GRAPH_MAX_PARAMS"
ENV_MAX_ACTIVATION_MB = "EFFDET_GRAPH_MAX_ACTIVATION_MB"
_BYTES_PER_ELEMENT = 4
_MIB = 2**20


@dataclass(frozen=True)
class Limits:
    """How large a spec may be, and the input it is measured at.

    Attributes:
        max_params: The most parameters the compiled network may have.
        max_activation_mb: The most MiB of activations (fp32, one image) at ``input_size``.
        input_size: The image size (square, or (H, W)) the activations are measured at.
        in_channels: The backbone's channels per backbone level; ``None``: ``width`` for each level.
    """

    max_params: int = DEFAULT_MAX_PARAMS
    max_activation_mb: float = DEFAULT_MAX_ACTIVATION_MB
    input_size: int | tuple[int, int] = DEFAULT_INPUT_SIZE
    in_channels: tuple[int, ...] | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Limits:
        """The default limits, changed by :data:`ENV_MAX_PARAMS` and :data:`ENV_MAX_ACTIVATION_MB` where set.

        Raises:
            ConfigError: A variable is set to something other than a positive number.
        """
        environ = os.environ if environ is None else environ
        limits = cls()
        if environ.get(ENV_MAX_PARAMS):
            limits = replace(limits, max_params=int(_positive(environ[ENV_MAX_PARAMS], ENV_MAX_PARAMS)))
        if environ.get(ENV_MAX_ACTIVATION_MB):
            limits = replace(limits, max_activation_mb=_positive(environ[ENV_MAX_ACTIVATION_MB], ENV_MAX_ACTIVATION_MB))
        return limits

    def measured_at(self, input_size: int | tuple[int, int] | None, in_channels: Sequence[int] | None) -> Limits:
        """These limits, measured at ``input_size`` and ``in_channels`` where given."""
        return replace(
            self,
            input_size=self.input_size if input_size is None else input_size,
            in_channels=self.in_channels if in_channels is None else tuple(in_channels),
        )


def _positive(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ConfigError(f"the environment variable {name} must be a positive number, got {quote(text)}")
    return value


def check_limits(spec: Spec, limits: Limits, where: Location | None = None) -> None:
    """Check ``spec`` against ``limits`` with the cost model (nothing is built).

    Args:
        spec: A validated spec.
        limits: The limits and the input they are measured at.
        where: Where to report a problem (default: the spec's file).

    Raises:
        SpecError: The network would have more parameters or activations than the limits allow; the message
            says the limit and how to raise it.
    """
    from graphspec.cost import estimate_cost

    where = where or Location(spec.file)
    channels = limits.in_channels
    if channels is None or len(channels) != len(spec.backbone_levels):
        channels = (spec.width,) * len(spec.backbone_levels)
    size = limits.input_size
    shown = f"{size}x{size}" if isinstance(size, int) else f"{size[0]}x{size[1]}"
    report = estimate_cost(spec, channels, size)
    if report.total.params > limits.max_params:
        raise SpecError(
            f"the network would have {report.total.params:,} parameters (width {spec.width}, {spec.repeats} "
            f"repeats), more than the limit of {limits.max_params:,}; make it smaller, or raise the limit "
            f"with --max-params N or the environment variable {ENV_MAX_PARAMS}",
            where,
        )
    megabytes = report.activations * _BYTES_PER_ELEMENT / _MIB
    if megabytes > limits.max_activation_mb:
        raise SpecError(
            f"the network's activations would take {megabytes:,.0f} MiB for one {shown} image (width "
            f"{spec.width}, {spec.repeats} repeats), more than the limit of {limits.max_activation_mb:,.0f} MiB; "
            f"make it smaller, use a smaller input, or raise the limit with --max-activation-mb N or the "
            f"environment variable {ENV_MAX_ACTIVATION_MB}",
            where,
        )
