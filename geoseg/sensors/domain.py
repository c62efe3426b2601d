"""The input domain of a bundle, and whether a scene (or a result) lies inside it.

A model only knows the numbers it was trained on. :class:`InputDomain` records
them: the band roles, the units (``dn`` digital numbers of a given data type, or
reflectance after a sensor preset), the pixel sizes, and per band the 1st, 50th
and 99th percentiles of the training inputs. Before inferring, :func:`check_scene`
compares a scene's decimated sample with that record:

- **refused** (far outside): for a bundle with fixed normalization, a band whose
  median lies beyond the training 1st-99th percentiles by more than
  :data:`VALUE_FACTOR` (8-bit values into a 16-bit DN bundle, reflectance into DN),
  or a pixel size more than :data:`RESOLUTION_FACTOR` times outside the training
  sizes (5 m into a 30 m model);
- **warned** (mild shift): a band median outside the training 1st–99th
  percentiles, a pixel size outside the training sizes (by more than
  :data:`RESOLUTION_TOLERANCE`), another data type.

Bundles with percentile normalization stretch every scene to its own range, so
absolute values are not compared for them; pixel sizes still are.

After inference, :func:`check_result` flags degenerate maps: one class over
:data:`DEGENERATE_SHARE` of the valid pixels where the training labels had
several, or a mean confidence far below the bundle's validation mean.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from geoseg.sensors.presets import SensorPreset

from geoseg.errors import (
    BundleError,
    GeosegError,
    SceneError,
)
from geoseg.errors import (
    DomainError as DomainError,  # re-exported: defined in errors since 0.2
)

VALUE_FACTOR = 2.0
"""A band is far outside when its median lies beyond the training 1st-99th percentile
range by more than this factor (below the training 1st / factor, or above its 99th x factor)."""

RESOLUTION_FACTOR = 3.0
"""A pixel size more than this factor outside the training sizes is refused."""

RESOLUTION_TOLERANCE = 1.25
"""A pixel size within this factor of the training sizes is not worth a warning
(Landsat 7's 28.5 m products beside 30 m ones)."""

DEGENERATE_SHARE = 0.97
"""One class over this share of the valid pixels makes a result look degenerate ..."""

MIN_TRAINING_SHARE = 0.03
"""... when at least two classes had this share of the training labels."""

REFLECTANCE = ("sr", "toa", "scaled")
"""Domain quantities that are reflectance (after a sensor preset's conversion)."""

CONFIDENCE_RATIO = 0.6
"""Mean confidence under this ratio of the bundle's validation mean is flagged."""


@dataclass(frozen=True)
class InputDomain:
    """What a bundle was trained on (any part may be unknown: ``None`` / empty)."""

    bands: tuple[str, ...]
    quantity: str = "unknown"  # dn, sr, toa, scaled (reflectance after a preset) or unknown
    dtype: str | None = None
    resolution_m: tuple[float, float] | None = None
    p01: tuple[float, ...] | None = None
    p50: tuple[float, ...] | None = None
    p99: tuple[float, ...] | None = None
    sensors: tuple[str, ...] = ()
    class_fractions: tuple[float, ...] | None = None
    val_mean_confidence: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def units_normalization(
        self,
        normalization: Mapping[str, Any],
        preset: SensorPreset | None,
        offset: Callable[[SensorPreset], float],
        source: str,
    ) -> Mapping[str, Any]:
        """``normalization`` for one scene, with its units folded in where needed.

        The preset's scale and ``offset(preset)`` go in where the bundle reads
        reflectance with fixed statistics (:meth:`needs_units`).

        Raises
        ------
        SceneError
            The bundle needs the units and ``source``'s sensor is not known.
        """
        if not self.needs_units(normalization):
            return normalization
        if preset is None:
            raise SceneError(
                f"bundle was trained on reflectance ({self.quantity}) with fixed statistics, so "
                f"the units of {source} must be known: pass --sensor (geoseg sensors lists them)"
            )
        return {**normalization, "scale": preset.scale, "offset": offset(preset)}

    def needs_units(self, normalization: Mapping[str, Any]) -> bool:
        """Whether a scene's units must be known: reflectance training with fixed statistics.

        A bundle trained on reflectance with fixed mean/std reads reflectance, so each
        scene's values go through its sensor preset's scale and offset first.
        """
        return self.quantity in REFLECTANCE and normalization.get("type") == "fixed"

    def __post_init__(self) -> None:
        n = len(self.bands)
        for key in ("p01", "p50", "p99"):
            values = getattr(self, key)
            if values is not None and (
                len(values) != n or not all(math.isfinite(v) for v in values)
            ):
                raise BundleError(f"domain {key} needs {n} finite numbers, got {values!r}")
        if self.resolution_m is not None:
            lo, hi = self.resolution_m
            if not (0 < lo <= hi and math.isfinite(hi)):
                raise BundleError(f"domain resolution_m must be 0 < min <= max, got {lo}, {hi}")
        if self.val_mean_confidence is not None and not 0 < self.val_mean_confidence <= 1:
            raise BundleError("domain val_mean_confidence must lie in (0, 1]")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as a bundle's metadata holds it (unknown parts left out)."""
        out: dict[str, Any] = {"bands": list(self.bands), "quantity": self.quantity}
        for key in ("dtype", "resolution_m", "p01", "p50", "p99", "class_fractions"):
            value = getattr(self, key)
            if value is not None:
                out[key] = list(value) if isinstance(value, tuple) else value
        if self.sensors:
            out["sensors"] = list(self.sensors)
        if self.val_mean_confidence is not None:
            out["val_mean_confidence"] = self.val_mean_confidence
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InputDomain:
        """Read (and validate) the form :meth:`to_dict` writes."""

        def floats(key: str) -> tuple[float, ...] | None:
            value = data.get(key)
            if value is None:
                return None
            try:
                return tuple(float(v) for v in value)
            except (TypeError, ValueError) as err:
                raise BundleError(f"domain {key} must be a list of numbers") from err

        res = floats("resolution_m")
        conf = data.get("val_mean_confidence")
        try:
            return cls(
                bands=tuple(str(b) for b in data.get("bands", ())),
                quantity=str(data.get("quantity", "unknown")),
                dtype=str(data["dtype"]) if data.get("dtype") else None,
                resolution_m=(res[0], res[1]) if res else None,
                p01=floats("p01"),
                p50=floats("p50"),
                p99=floats("p99"),
                sensors=tuple(str(s) for s in data.get("sensors", ())),
                class_fractions=floats("class_fractions"),
                val_mean_confidence=float(conf) if conf is not None else None,
            )
        except (TypeError, ValueError, IndexError) as err:
            if isinstance(err, GeosegError):
                raise
            raise BundleError(f"bundle domain is malformed ({err})") from err


def sample_percentiles(
    sample: NDArray[Any],
) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """Per-band 1st, 50th and 99th percentiles of a ``(bands, pixels)`` sample of valid pixels.

    >>> sample_percentiles(np.arange(101.0)[None])
    ((1.0,), (50.0,), (99.0,))
    """
    p = np.percentile(np.asarray(sample, dtype=np.float64), [1, 50, 99], axis=1)
    return tuple(map(float, p[0])), tuple(map(float, p[1])), tuple(map(float, p[2]))


@dataclass
class DomainCheck:
    """What :func:`check_scene` found: reasons to refuse, and milder shifts to warn about."""

    refuse: list[str] = field(default_factory=list)
    warn: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Nothing to refuse or warn about."""
        return not self.refuse and not self.warn

    def raise_if_refused(self, bundle: str, *, hint: str) -> None:
        """Raise :class:`DomainError` naming the first reason, unless nothing is refused."""
        if self.refuse:
            more = f" (and {len(self.refuse) - 1} more)" if len(self.refuse) > 1 else ""
            raise DomainError(
                f"the scene lies far outside what bundle '{bundle}' was trained on: "
                f"{self.refuse[0]}{more}; {hint}"
            )


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"


def check_scene(
    domain: InputDomain,
    *,
    sample: NDArray[Any] | None,
    resolution_m: float | None,
    dtype: str | None,
    compare_values: bool,
) -> DomainCheck:
    """Compare a scene with a bundle's domain (see the module docstring for the rules).

    Parameters
    ----------
    domain
        The bundle's recorded domain.
    sample
        ``(bands, pixels)`` valid pixels of the scene in the bundle's band order and
        units (after any sensor preset), or ``None`` when not read.
    resolution_m
        The scene's pixel size in metres (``None``: unknown, not compared).
    dtype
        The scene's data type.
    compare_values
        Whether absolute values matter (fixed normalization).

    Examples
    --------
    >>> d = InputDomain(("red",), quantity="dn", dtype="uint16", resolution_m=(30.0, 30.0),
    ...                 p01=(8000.0,), p50=(11000.0,), p99=(25000.0,))
    >>> c = check_scene(d, sample=np.array([[20.0, 90.0, 250.0]]), resolution_m=30.0,
    ...                 dtype="uint8", compare_values=True)
    >>> c.refuse[0]
    'band red: values 21.4-247 lie far below the training range 8000-25000 (the scene looks like 8-bit data)'
    >>> c.warn
    ['the scene is uint8, the training data was uint16']
    """  # noqa: E501
    check = DomainCheck()
    if compare_values and sample is not None and domain.p01 and domain.p99 and domain.p50:
        _check_values(check, domain, sample)
    if dtype and domain.dtype and dtype != domain.dtype:
        check.warn.append(f"the scene is {dtype}, the training data was {domain.dtype}")
    if resolution_m and domain.resolution_m:
        _check_resolution(check, domain.resolution_m, resolution_m)
    return check


def _check_values(check: DomainCheck, domain: InputDomain, sample: NDArray[Any]) -> None:
    assert domain.p01 and domain.p50 and domain.p99  # checked by the caller
    lo, mid, hi = sample_percentiles(sample)
    for k, name in enumerate(domain.bands):
        t_lo, t_hi = domain.p01[k], domain.p99[k]
        span = f"values {_fmt(lo[k])}-{_fmt(hi[k])}"
        train = f"the training range {_fmt(t_lo)}-{_fmt(t_hi)}"
        if t_lo > 0 and mid[k] * VALUE_FACTOR < t_lo:
            check.refuse.append(f"band {name}: {span} lie far below {train}{_units(hi[k])}")
        elif t_hi > 0 and mid[k] > t_hi * VALUE_FACTOR:
            check.refuse.append(f"band {name}: {span} lie far above {train}")
        elif not t_lo <= mid[k] <= t_hi:
            check.warn.append(f"band {name}: median {_fmt(mid[k])} is outside {train}")


def _units(scene_high: float) -> str:
    if scene_high <= 1.5:
        return " (the scene looks like reflectance in [0, 1])"
    if scene_high <= 255:
        return " (the scene looks like 8-bit data)"
    return ""


def _check_resolution(check: DomainCheck, trained: tuple[float, float], res: float) -> None:
    lo, hi = trained
    said = f"{lo:g} m" if lo == hi else f"{lo:g}-{hi:g} m"
    if res < lo / RESOLUTION_FACTOR or res > hi * RESOLUTION_FACTOR:
        check.refuse.append(
            f"pixel size {res:.3g} m is more than {RESOLUTION_FACTOR:g}x outside the training "
            f"pixel size {said}"
        )
    elif not lo / RESOLUTION_TOLERANCE <= res <= hi * RESOLUTION_TOLERANCE:
        check.warn.append(f"pixel size {res:.3g} m is outside the training pixel size {said}")


def check_result(
    domain: InputDomain | None,
    *,
    class_pixels: Sequence[int],
    class_names: Sequence[str],
    mean_confidence: float | None = None,
) -> list[str]:
    """Warnings for a result that looks degenerate (empty when it does not).

    >>> d = InputDomain(("red",), class_fractions=(0.5, 0.5))
    >>> check_result(d, class_pixels=[990, 10], class_names=["land", "water"])
    ['results look degenerate: land covers 99.0% of the valid pixels, where the training labels had 2 classes of 3% or more']
    """  # noqa: E501
    out: list[str] = []
    total = sum(class_pixels)
    if domain is None or total == 0:
        return out
    top = int(np.argmax(class_pixels))
    share = class_pixels[top] / total
    several = sum(f >= MIN_TRAINING_SHARE for f in domain.class_fractions or ())
    if share > DEGENERATE_SHARE and several >= 2:
        out.append(
            f"results look degenerate: {class_names[top]} covers {share:.1%} of the valid "
            f"pixels, where the training labels had {several} classes of "
            f"{MIN_TRAINING_SHARE:.0%} or more"
        )
    ref = domain.val_mean_confidence
    if mean_confidence is not None and ref and mean_confidence < CONFIDENCE_RATIO * ref:
        out.append(
            f"results look degenerate: mean confidence {mean_confidence:.2f} is far below the "
            f"bundle's {ref:.2f} on its validation data"
        )
    return out


def pixel_size_m(crs: Any, transform: Any, center_lat: float | None = None) -> float | None:
    """The mean pixel side in metres (``None`` without a CRS).

    Geographic CRSs use the metres of a degree at ``center_lat`` (WGS 84 sphere
    approximation, good to a fraction of a percent for this purpose).
    """
    if crs is None:
        return None
    xres, yres = abs(transform.a), abs(transform.e)
    if getattr(crs, "is_geographic", False):
        lat = math.radians(center_lat or 0.0)
        metres = 111_320.0
        return float(((xres * metres * math.cos(lat)) * (yres * metres)) ** 0.5)
    factor = float(getattr(crs, "linear_units_factor", (None, 1.0))[1] or 1.0)
    return float((xres * yres) ** 0.5 * factor)
