"""The catalog's typed, frozen objects: what a deployment's YAML file holds.

These models validate the shape of each entry (codes, names, classes, numbers, time
zones). Cross-references between entries (an agency's region, a rule's agency) are
checked by ``awasi.catalog.loader``, which also turns every error into
``<file>:<line>: <what is wrong>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from awasi.workdays import WorkCalendar

ResolutionClass = Literal["light", "normative", "no_investigation", "investigation"]
RESOLUTION_CLASSES: tuple[str, ...] = get_args(ResolutionClass)
CategoryGroup = Literal["asn", "service"]

# National defaults (SP4N-LAPOR, Perpres 76/2013). The YAML's ``defaults.policy`` block
# is the configuration; these only fill what a catalog leaves out.
NATIONAL_RESOLVE_DAYS: dict[str, int] = {
    "light": 2,
    "normative": 5,
    "no_investigation": 14,
    "investigation": 60,
}
# The class used for ``resolve_days`` when a policy is asked for without a category.
DEFAULT_RESOLUTION_CLASS: ResolutionClass = "normative"

Days = Annotated[int, Field(ge=1, le=3650)]
Share = Annotated[float, Field(gt=0, lt=1)]
RegionCode = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9]{1,9}$")]
AgencyCode = Annotated[str, Field(pattern=r"^[A-Z0-9]+(-[A-Z0-9]+)*$", max_length=40)]
CategoryCode = Annotated[str, Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=40)]
Text = Annotated[str, Field(min_length=1, max_length=300)]

_MONTH_DAY = re.compile(r"^(\d{2})-(\d{2})$")


def _valid_month_day(text: str) -> bool:
    m = _MONTH_DAY.match(text)
    if not m:
        return False
    try:
        date(2000, int(m[1]), int(m[2]))  # 2000 is a leap year: 02-29 is allowed
    except ValueError:
        return False
    return True


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PolicyOverride(_Frozen):
    """A partial deadline policy: any key left out keeps the value from the layer below.

    ``resolve_days`` is a map by resolution class; on an (agency, category) override it
    may also be one number, the resolution time of that category.
    """

    triage_days: Days | None = None
    acknowledge_days: Days | None = None
    resolve_days: dict[ResolutionClass, Days] | Days | None = None
    dispute_days: Days | None = None
    warning_share: Share | None = None
    escalation_level2_days: Days | None = None
    incomplete_archive_days: Days | None = None
    archive_reminder_days: Days | None = None
    revive_days: Days | None = None


class Policy(_Frozen):
    """The deadline policy in force for one (region, agency, category).

    Days are working days in the region's time zone, except ``incomplete_archive_days``
    (calendar days, as LAPOR counts them), ``archive_reminder_days`` (the last
    reminder, that many calendar days before archiving) and ``revive_days`` (calendar
    days after archiving in which the citizen's answer revives the complaint).
    ``resolve_days`` is already chosen by the category's resolution class
    (``resolution_class``; "normative" when no category was given). Field defaults
    are the national rules; a catalog's ``defaults.policy`` block overrides them.
    """

    triage_days: Days = 3
    acknowledge_days: Days = 5
    resolve_days: Days = NATIONAL_RESOLVE_DAYS[DEFAULT_RESOLUTION_CLASS]
    dispute_days: Days = 10
    warning_share: Share = 0.8
    escalation_level2_days: Days = 5
    incomplete_archive_days: Days = 30
    archive_reminder_days: Days = 3
    revive_days: Days = 30
    resolution_class: ResolutionClass = DEFAULT_RESOLUTION_CLASS

    @classmethod
    def resolve(
        cls, layers: list[PolicyOverride | None], resolution_class: ResolutionClass | None
    ) -> Policy:
        """Apply ``layers`` (lowest first) over the national defaults."""
        klass = resolution_class or DEFAULT_RESOLUTION_CLASS
        values: dict[str, Any] = {}
        by_class = dict(NATIONAL_RESOLVE_DAYS)
        fixed_resolve: int | None = None
        for layer in layers:
            if layer is None:
                continue
            for key, value in layer.model_dump(exclude_none=True).items():
                if key != "resolve_days":
                    values[key] = value
                elif isinstance(value, dict):
                    by_class.update(value)
                    fixed_resolve = None
                else:
                    fixed_resolve = value
        values["resolve_days"] = fixed_resolve if fixed_resolve is not None else by_class[klass]
        return cls(resolution_class=klass, **values)


class Category(_Frozen):
    """A complaint category. ``group`` is "asn" (conduct of civil servants) or
    "service" (a public service); ``resolution_class`` picks the resolution time."""

    code: CategoryCode
    name_id: Text
    name_en: Text
    group: CategoryGroup
    resolution_class: ResolutionClass
    description_id: str = ""
    description_en: str = ""

    def name(self, locale: str) -> str:
        """The name in ``locale`` ("id" or "en"); Indonesian for anything else."""
        return self.name_en if locale.startswith("en") else self.name_id


class BoundingBox(_Frozen):
    """The area a region's reports may be located in, in degrees (WGS 84): a pin
    outside it is refused (a pin in Medan for a Sorong complaint is a mistake). A
    rectangle, generous around the city's boundary: it catches the wrong city, not
    the wrong street."""

    south: Annotated[float, Field(ge=-90, le=90)]
    west: Annotated[float, Field(ge=-180, le=180)]
    north: Annotated[float, Field(ge=-90, le=90)]
    east: Annotated[float, Field(ge=-180, le=180)]

    @model_validator(mode="after")
    def _ordered(self) -> BoundingBox:
        if self.south >= self.north:
            raise ValueError("south must be less than north")
        if self.west >= self.east:
            raise ValueError("west must be less than east (boxes across the 180th "
                             "meridian are not supported)")
        return self

    def contains(self, lat: float, lon: float) -> bool:
        return self.south <= lat <= self.north and self.west <= lon <= self.east

    @property
    def center(self) -> tuple[float, float]:
        return (self.south + self.north) / 2, (self.west + self.east) / 2


class Region(_Frozen):
    """A region (a city or one of its districts) with its own time zone and calendar.

    ``days_off`` are one-off extra non-working dates; ``annual_days_off`` are "MM-DD"
    days off every year (the city's anniversary). ``categories``, when set, restricts
    the categories offered in this region. The region's triage desk is not an agency.
    """

    code: RegionCode
    name: Text
    timezone: str
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] = "ID"
    days_off: frozenset[date] = frozenset()
    annual_days_off: frozenset[str] = frozenset()
    categories: tuple[CategoryCode, ...] | None = None
    policy: PolicyOverride | None = None
    # Where its reports may be pinned; None: any point on Earth is accepted.
    bbox: BoundingBox | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown IANA time zone {value!r}") from e
        return value

    @field_validator("annual_days_off")
    @classmethod
    def _month_days(cls, value: frozenset[str]) -> frozenset[str]:
        for item in value:
            if not _valid_month_day(item):
                raise ValueError(f"annual day off {item!r} is not MM-DD")
        return value

    @cached_property
    def calendar(self) -> WorkCalendar:
        """The region's working-day calendar (built once)."""
        annual = {(int(md[:2]), int(md[3:])) for md in self.annual_days_off}
        return WorkCalendar(timezone=self.timezone, days_off=self.days_off,
                            country=self.country, annual_days_off=annual)


AgencyRole = Literal["inspectorate"]


class Agency(_Frozen):
    """A government agency (OPD) of one region. ``code`` is unique in the catalog.
    ``roles``: ``inspectorate`` marks the region's internal inspectorate, which level-2
    escalations of every agency of the region notify."""

    code: AgencyCode
    region: RegionCode
    name: Text
    short_name: Annotated[str, Field(min_length=1, max_length=60)]
    roles: tuple[AgencyRole, ...] = ()
    policy: PolicyOverride | None = None
    category_policies: dict[CategoryCode, PolicyOverride] = Field(default_factory=dict)


class Unit(_Frozen):
    """A service unit (unit layanan) where people are served: a counter, a puskesmas,
    a school, a kelurahan office. Satisfaction surveys are per unit. ``population``
    (optional) is how many people the unit serves in a period, for the survey's
    sample size (Krejcie-Morgan, ``awasi.ikm``). An agency that lists no unit is one
    unit itself (code and name of the agency; see ``Catalog.units``)."""

    code: AgencyCode
    agency: AgencyCode
    name: Text
    population: Annotated[int, Field(ge=1, le=100_000_000)] | None = None


class Rule(_Frozen):
    """A routing rule of one region: complaints in one of ``categories``, or (when no
    category rule applies) whose text contains one of ``keywords``, go to ``agency``."""

    region: RegionCode
    agency: AgencyCode
    categories: tuple[CategoryCode, ...] = ()
    keywords: tuple[Annotated[str, Field(min_length=2, max_length=80)], ...] = ()

    @model_validator(mode="after")
    def _one_kind(self) -> Rule:
        if bool(self.categories) == bool(self.keywords):
            raise ValueError("a rule needs either `categories` or `keywords` (not both)")
        return self


class Defaults(_Frozen):
    policy: PolicyOverride = PolicyOverride()


class CatalogFile(_Frozen):
    """The whole YAML document, shape-checked."""

    version: Literal[1] = 1
    defaults: Defaults = Defaults()
    audit_sample_share: Annotated[float, Field(ge=0, le=1)] = 0.1
    stats_min_cases: Annotated[int, Field(ge=1)] = 5
    categories: tuple[Category, ...]
    regions: tuple[Region, ...]
    agencies: tuple[Agency, ...] = ()
    units: tuple[Unit, ...] = ()
    rules: tuple[Rule, ...] = ()


@dataclass(frozen=True, slots=True)
class RouteDecision:
    """Where a complaint goes: ``agency`` code (None: the region's triage queue) and
    the id of the rule that decided ("category:MDN:asn-pungli",
    "keyword:MDN:jalan berlubang" or "triage")."""

    agency: str | None
    rule: str
