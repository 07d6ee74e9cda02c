"""Shared pieces of the spec models: camelCase fields, percents, label selectors."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails

API_GROUP = "sla.dev"
API_VERSION = f"{API_GROUP}/v1alpha1"


class SpecModel(BaseModel):
    """A part of a spec document: camelCase in YAML, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


_RAISED_PREFIXES = {
    "value_error": "Value error, ",
    "assertion_error": "Assertion failed, ",
}
"""What pydantic puts before the text of an error a validator raised."""


def error_message(error: ErrorDetails) -> str:
    """A pydantic error's message as the validator wrote it, for findings and
    answers: "'5x' is not a duration", not "Value error, '5x' is not a duration"."""
    prefix = _RAISED_PREFIXES.get(error["type"], "")
    return str(error["msg"]).removeprefix(prefix)


def _coerce_percent(value: object) -> Decimal:
    # Percents are kept as Decimal from the text the author wrote, so 99.9 means
    # exactly 999/1000 and a budget spent to the last event reads 0, not 1e-16.
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError(f"{value!r} is not a number")
    try:
        number = (
            Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))
        )
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return number


def _serialize_percent(value: Decimal) -> float | int:
    return int(value) if value == value.to_integral_value() else float(value)


Percent = Annotated[
    Decimal,
    BeforeValidator(_coerce_percent),
    PlainSerializer(
        _serialize_percent, return_type=float, when_used="json-unless-none"
    ),
]
"""A number read exactly from its text; range checks belong to the field."""


def _percent_between(low: str, high: str, *, open_low: bool, open_high: bool) -> object:
    low_value, high_value = Decimal(low), Decimal(high)
    left, right = "(" if open_low else "[", ")" if open_high else "]"

    def outside(value: Decimal) -> bool:
        too_low = value <= low_value if open_low else value < low_value
        too_high = value >= high_value if open_high else value > high_value
        return too_low or too_high

    def check(value: Decimal) -> Decimal:
        if outside(value):
            raise ValueError(
                f"must be in {left}{low}, {high}{right} percent, got {value}"
            )
        # The native YAML, the API and the snapshots write percents as numbers
        # (doubles): an exact value inside the range whose number falls on a bound
        # (99.9999999999999999999 → 100.0) would come back as an invalid objective.
        number = float(value)
        if outside(Decimal(number)):
            raise ValueError(
                f"{value} is {number} once written as a number, outside "
                f"{left}{low}, {high}{right} percent; write fewer digits"
            )
        return value

    return AfterValidator(check)


ObjectivePercent = Annotated[
    Percent, _percent_between("0", "100", open_low=True, open_high=True)
]
BudgetPercent = Annotated[
    Percent, _percent_between("0", "100", open_low=False, open_high=False)
]


def _finite_positive(value: float) -> float:
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"must be a positive finite number, got {value}")
    return value


PositiveNumber = Annotated[float, AfterValidator(_finite_positive)]

# Kubernetes object names: RFC 1123 subdomain, as the API server checks them.
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)


def _object_name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(
            f"{value!r} is not a valid name (lower-case letters, digits, '-' and '.')"
        )
    return value


ObjectName = Annotated[str, AfterValidator(_object_name)]


class ObjectMeta(SpecModel):
    name: ObjectName
    namespace: ObjectName = "default"
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    generation: int | None = None
    # Fields the API server adds; accepted so `kubectl get -o yaml` output loads.
    model_config = ConfigDict(extra="ignore")


class LabelSelectorRequirement(SpecModel):
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _values_fit_operator(self) -> LabelSelectorRequirement:
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"operator {self.operator} needs at least one value")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"operator {self.operator} takes no values")
        return self


class LabelSelector(SpecModel):
    """A Kubernetes label selector; the empty selector matches everything."""

    match_labels: dict[str, str] = Field(default_factory=dict)
    match_expressions: list[LabelSelectorRequirement] = Field(default_factory=list)

    def matches(self, labels: dict[str, str]) -> bool:
        if any(labels.get(key) != value for key, value in self.match_labels.items()):
            return False
        return all(_requirement_holds(req, labels) for req in self.match_expressions)

    def to_query(self) -> str:
        """The selector as the API's ``labelSelector`` query parameter."""
        terms = [f"{key}={value}" for key, value in sorted(self.match_labels.items())]
        for req in self.match_expressions:
            if req.operator == "Exists":
                terms.append(req.key)
            elif req.operator == "DoesNotExist":
                terms.append(f"!{req.key}")
            else:
                word = "in" if req.operator == "In" else "notin"
                terms.append(f"{req.key} {word} ({','.join(req.values)})")
        return ",".join(terms)


def _requirement_holds(req: LabelSelectorRequirement, labels: dict[str, str]) -> bool:
    present = req.key in labels
    if req.operator == "Exists":
        return present
    if req.operator == "DoesNotExist":
        return not present
    if req.operator == "In":
        return present and labels[req.key] in req.values
    return not present or labels[req.key] not in req.values


def _require_aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(
            f"{value.isoformat()} has no time zone; write it with Z or an offset"
        )
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_require_aware)]
"""An aware instant, held in UTC, written as RFC 3339 with ``Z``: pydantic writes
a zero offset as ``Z`` itself, in its own serializer, at a sixth of the cost of a
Python one (it is in every snapshot stored)."""
