"""The ``SLODefinition`` resource: one objective over one indicator."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BeforeValidator,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from sla.model.base import (
    BudgetPercent,
    ObjectivePercent,
    ObjectMeta,
    ObjectName,
    PositiveNumber,
    SpecModel,
)
from sla.model.durations import Duration, format_duration, parse_duration

WINDOW_PLACEHOLDER = "$window"
"""Written in expressions where the engine puts each window's range (``[5m]``)."""

CALENDAR_UNITS = ("week", "month")


@dataclass(frozen=True)
class Window:
    """A rolling window of ``seconds``, or a calendar ``week`` or ``month``."""

    seconds: int | None = None
    calendar: Literal["week", "month"] | None = None

    @property
    def is_calendar(self) -> bool:
        return self.calendar is not None

    @property
    def nominal_seconds(self) -> int:
        """Length used to scale burn-rate tables: a calendar month counts as 30 days."""
        if self.seconds is not None:
            return self.seconds
        return 7 * 86400 if self.calendar == "week" else 30 * 86400

    def __str__(self) -> str:
        return self.calendar or format_duration(self.seconds or 0)


def _parse_window(value: object) -> Window:
    if isinstance(value, Window):
        return value
    if isinstance(value, str) and value.strip() in CALENDAR_UNITS:
        return Window(calendar=value.strip())  # type: ignore[arg-type]
    if isinstance(value, str):
        return Window(seconds=parse_duration(value))
    raise ValueError(
        f"{value!r} is not a window: write a duration (30d) or week or month"
    )


WindowField = Annotated[
    Window,
    BeforeValidator(_parse_window),
    PlainSerializer(str, return_type=str),
]


class Query(SpecModel):
    """A counter selector (``metric``) or a PromQL expression (``expr``).

    A selector is counted with ``sum(increase(selector[window]))``. An expression is
    used as written, with ``$window`` replaced by the window's range, and must return
    one number per window.
    """

    metric: str | None = None
    expr: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Query:
        if (self.metric is None) == (self.expr is None):
            raise ValueError("give exactly one of metric or expr")
        if self.expr is not None and WINDOW_PLACEHOLDER not in self.expr:
            raise ValueError(
                f"expr must contain {WINDOW_PLACEHOLDER} where the window goes, "
                f"e.g. sum(increase(requests_total[{WINDOW_PLACEHOLDER}]))"
            )
        for text in (self.metric, self.expr):
            if text is not None and not text.strip():
                raise ValueError("must not be empty")
        return self


class RatioIndicator(SpecModel):
    good: Query | None = None
    bad: Query | None = None
    total: Query

    @model_validator(mode="after")
    def _good_or_bad(self) -> RatioIndicator:
        if (self.good is None) == (self.bad is None):
            raise ValueError("give exactly one of good or bad, besides total")
        return self


class LatencyIndicator(SpecModel):
    """Requests faster than ``threshold`` seconds are good.

    ``histogram`` is the histogram's name with optional matchers, without the
    ``_bucket`` suffix: ``http_request_duration_seconds{job="api"}``.
    """

    histogram: str
    threshold: PositiveNumber

    @field_validator("histogram")
    @classmethod
    def _no_suffix(cls, value: str) -> str:
        name = value.split("{", 1)[0].strip()
        if not name:
            raise ValueError("needs the histogram's metric name")
        if name.endswith(("_bucket", "_count", "_sum")):
            raise ValueError(f"give the histogram's base name, not {name!r}")
        return value


class BoolGaugeIndicator(SpecModel):
    """A 0/1 gauge sampled over time (``probe_success``); the fraction at 1 is good."""

    metric: str


class RawIndicator(SpecModel):
    """An expression that returns the error ratio (0–1) over ``$window``."""

    error_ratio: str

    @field_validator("error_ratio")
    @classmethod
    def _has_window(cls, value: str) -> str:
        if WINDOW_PLACEHOLDER not in value:
            raise ValueError(f"must contain {WINDOW_PLACEHOLDER} where the window goes")
        return value


class CompositeComponent(SpecModel):
    slo: ObjectName
    weight: PositiveNumber = 1.0


class CompositeIndicator(SpecModel):
    """Other SLODefinitions of the namespace; good and total are their weighted sums."""

    components: list[CompositeComponent] = Field(min_length=1)

    @field_validator("components")
    @classmethod
    def _unique(cls, value: list[CompositeComponent]) -> list[CompositeComponent]:
        names = [component.slo for component in value]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"components named more than once: {', '.join(repeated)}")
        return value


class Indicator(SpecModel):
    ratio: RatioIndicator | None = None
    latency: LatencyIndicator | None = None
    bool_gauge: BoolGaugeIndicator | None = None
    raw: RawIndicator | None = None
    composite: CompositeIndicator | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Indicator:
        given = [
            name for name in INDICATOR_KINDS if getattr(self, _attr(name)) is not None
        ]
        if len(given) != 1:
            kinds = ", ".join(INDICATOR_KINDS)
            found = ", ".join(given) or "none"
            raise ValueError(
                f"give exactly one indicator kind of {kinds} (found {found})"
            )
        return self

    @property
    def kind(self) -> str:
        return next(n for n in INDICATOR_KINDS if getattr(self, _attr(n)) is not None)


INDICATOR_KINDS = ("ratio", "latency", "boolGauge", "raw", "composite")


def _attr(kind: str) -> str:
    return "bool_gauge" if kind == "boolGauge" else kind


class Timeslice(SpecModel):
    """A slice is good when its own good ratio reaches ``target`` percent.

    ``RatioTimeslices`` averages the slices' ratios and needs no target.
    """

    length: Duration
    target: ObjectivePercent | None = None


class BurnRateRow(SpecModel):
    severity: Literal["page", "ticket"]
    long_window: Duration
    short_window: Duration
    factor: PositiveNumber

    @model_validator(mode="after")
    def _short_below_long(self) -> BurnRateRow:
        if self.short_window >= self.long_window:
            raise ValueError(
                f"shortWindow {format_duration(self.short_window)} must be shorter "
                f"than longWindow {format_duration(self.long_window)}"
            )
        return self


class Alerting(SpecModel):
    """A burn-rate table: a preset, or explicit rows (an empty list: no alerts)."""

    preset: Literal["google", "pyrra"] | None = None
    rows: list[BurnRateRow] | None = None

    @model_validator(mode="after")
    def _preset_or_rows(self) -> Alerting:
        if self.preset is not None and self.rows is not None:
            raise ValueError("give a preset or rows, not both")
        return self

    @property
    def effective_preset(self) -> Literal["google", "pyrra"] | None:
        """The preset in force: ``google`` when neither a preset nor rows is given."""
        if self.rows is not None:
            return None
        return self.preset or "google"


class SecretKeyRef(SpecModel):
    name: ObjectName
    key: str = Field(min_length=1)


class Datasource(SpecModel):
    url: str | None = None
    token_secret_ref: SecretKeyRef | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value.rstrip("/") if value else value


BudgetingMethod = Literal["Occurrences", "Timeslices", "RatioTimeslices"]


class SLOSpec(SpecModel):
    service: str = Field(min_length=1)
    description: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    objective: ObjectivePercent
    warning_below: BudgetPercent = Decimal(25)
    window: WindowField
    time_zone: str | None = None
    budgeting_method: BudgetingMethod = "Occurrences"
    timeslice: Timeslice | None = None
    indicator: Indicator
    alerting: Alerting = Field(default_factory=Alerting)
    datasource: Datasource | None = None

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an IANA time zone") from exc
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SLOSpec:
        if self.time_zone is not None and not self.window.is_calendar:
            raise ValueError("timeZone applies only to calendar windows (week, month)")
        slices = self.budgeting_method in ("Timeslices", "RatioTimeslices")
        if slices and self.timeslice is None:
            raise ValueError(
                f"budgetingMethod {self.budgeting_method} needs timeslice.length"
            )
        if (
            self.budgeting_method == "Timeslices"
            and self.timeslice is not None
            and self.timeslice.target is None
        ):
            raise ValueError("budgetingMethod Timeslices needs timeslice.target")
        if not slices and self.timeslice is not None:
            raise ValueError(
                "timeslice is only used with Timeslices or RatioTimeslices"
            )
        if self.timeslice and self.timeslice.length >= self.window.nominal_seconds:
            raise ValueError("timeslice.length must be shorter than the window")
        if self.indicator.raw is not None and slices:
            raise ValueError(
                "a raw error-ratio indicator cannot be split into timeslices"
            )
        return self

    @property
    def target(self) -> Fraction:
        """The objective as an exact fraction (99.9 → 999/1000)."""
        return Fraction(self.objective) / 100

    @property
    def allowed_bad_ratio(self) -> Fraction:
        return 1 - self.target

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone or "UTC")


class SLODefinition(SpecModel):
    api_version: Literal["sla.dev/v1alpha1"] = "sla.dev/v1alpha1"
    kind: Literal["SLODefinition"] = "SLODefinition"
    metadata: ObjectMeta
    spec: SLOSpec
    status: dict[str, Any] | None = Field(default=None, exclude=True)

    @property
    def key(self) -> str:
        """``namespace/name``, the SLO's name in outputs and events."""
        return f"{self.metadata.namespace}/{self.metadata.name}"
