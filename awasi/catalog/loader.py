"""Load a deployment catalog from YAML, with errors that name the line.

``load_catalog(path)`` reads the file with a YAML loader that remembers the line of
every key and list item, validates the shape with pydantic (``models.CatalogFile``),
then checks every cross-reference. Any problem raises ``CatalogError`` whose message
is ``<file>:<line>: <where>: <what is wrong>`` (one line per problem, sorted by line).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from awasi.catalog.models import (
    Agency,
    CatalogFile,
    Category,
    Policy,
    PolicyOverride,
    Region,
    RouteDecision,
    Unit,
)

Loc = tuple[str | int, ...]


class CatalogError(ValueError):
    """The catalog file is unreadable or invalid. ``problems`` holds (line, message)
    pairs; ``str(error)`` is ``<file>:<line>: <message>``, one line per problem."""

    def __init__(self, path: str, problems: list[tuple[int, str]]) -> None:
        self.path = path
        self.problems = sorted(problems, key=lambda p: p[0])
        super().__init__("\n".join(f"{path}:{line}: {msg}" for line, msg in self.problems))

    @property
    def line(self) -> int:
        """The line of the first problem."""
        return self.problems[0][0]


class UnknownCode(LookupError):
    """A region, agency or category code that the catalog does not hold."""


# --- YAML with line numbers --------------------------------------------------------

class _Map(dict[Any, Any]):
    """A YAML mapping that remembers its own line and the line of each key."""

    line: int
    lines: dict[Any, int]


class _Seq(list[Any]):
    """A YAML sequence that remembers its own line and the line of each item."""

    line: int
    lines: list[int]


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> _Map:
    loader.flatten_mapping(node)
    result = _Map()
    result.line = node.start_mark.line + 1
    result.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping", node.start_mark, "unhashable key",
                key_node.start_mark) from None
        if key in result:
            # PyYAML silently keeps the last of two equal keys; a catalog must not.
            raise yaml.constructor.ConstructorError(
                "while reading a mapping", node.start_mark,
                f"duplicate key {key!r} (first on line {result.lines[key]})",
                key_node.start_mark)
        result[key] = loader.construct_object(value_node, deep=True)
        result.lines[key] = key_node.start_mark.line + 1
    return result


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode) -> _Seq:
    result = _Seq(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.lines = [child.start_mark.line + 1 for child in node.value]
    return result


def _construct_timestamp(loader: _LineLoader, node: yaml.ScalarNode) -> Any:
    # PyYAML raises a bare ValueError for 2026-13-01; give it the node's line.
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError as e:
        raise yaml.constructor.ConstructorError(
            None, None, f"invalid date {node.value!r} ({e})", node.start_mark) from e


_LineLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)


def _line_of(raw: Any, loc: Loc) -> tuple[int, str]:
    """The line of the deepest node of ``loc`` found in ``raw``, and ``loc`` as text
    (``regions[2].timezone``), keeping only the parts that name real keys."""
    line = getattr(raw, "line", 1)
    node = raw
    text = ""
    for i, part in enumerate(loc):
        if (isinstance(node, _Map) and part not in node and i + 1 < len(loc)
                and loc[i + 1] in node):
            continue  # a union branch tag such as "dict[str,int]": not a key
        if isinstance(node, _Map) and part in node:
            line = node.lines[part]
            node = node[part]
        elif isinstance(node, _Seq) and isinstance(part, int) and 0 <= part < len(node):
            line = node.lines[part]
            node = node[part]
        else:
            # A missing field is still worth naming; pydantic's union branch tags are not.
            if (isinstance(part, str) and part.isidentifier() and isinstance(node, dict)
                    and i == len(loc) - 1):
                text += f".{part}" if text else part
            break
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return line, text


def _where(text: str, message: str) -> str:
    return f"{text}: {message}" if text else message


# --- the catalog -------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _KeywordRule:
    keyword: str
    pattern: re.Pattern[str]
    agency: str


def keyword_pattern(keyword: str) -> re.Pattern[str]:
    """Whole words or phrases, case-insensitive, any run of spaces between words."""
    words = [re.escape(w) for w in keyword.split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", re.IGNORECASE)


class Catalog:
    """A validated catalog: regions, agencies, categories, routing rules, policies.

    Lookups by code raise ``UnknownCode`` for a code the catalog does not hold.
    """

    def __init__(self, doc: CatalogFile, source: str = "<catalog>") -> None:
        self.source = source
        self.document = doc
        self.regions: dict[str, Region] = {r.code: r for r in doc.regions}
        self.agencies: dict[str, Agency] = {a.code: a for a in doc.agencies}
        self.categories: dict[str, Category] = {c.code: c for c in doc.categories}
        self.audit_sample_share: float = doc.audit_sample_share
        self.stats_min_cases: int = doc.stats_min_cases
        self.default_policy: PolicyOverride = doc.defaults.policy
        # Service units: the listed ones, and each agency that lists none is its own.
        self.units: dict[str, Unit] = {}
        listed = {u.agency for u in doc.units}
        for agency in doc.agencies:
            if agency.code not in listed:
                self.units[agency.code] = Unit(code=agency.code, agency=agency.code,
                                               name=agency.name)
            for unit in doc.units:
                if unit.agency == agency.code:
                    self.units[unit.code] = unit
        self._category_rules: dict[tuple[str, str], str] = {}
        self._keyword_rules: dict[str, list[_KeywordRule]] = {r: [] for r in self.regions}
        for rule in doc.rules:
            for category in rule.categories:
                self._category_rules[(rule.region, category)] = rule.agency
            for keyword in rule.keywords:
                norm = " ".join(keyword.lower().split())
                self._keyword_rules[rule.region].append(
                    _KeywordRule(norm, keyword_pattern(norm), rule.agency))

    def __repr__(self) -> str:
        return (f"Catalog({self.source!r}, regions={len(self.regions)}, "
                f"agencies={len(self.agencies)}, categories={len(self.categories)})")

    # --- lookups ------------------------------------------------------------------

    def region(self, code: str) -> Region:
        try:
            return self.regions[code]
        except KeyError:
            raise UnknownCode(f"unknown region {code!r}") from None

    def agency(self, code: str) -> Agency:
        try:
            return self.agencies[code]
        except KeyError:
            raise UnknownCode(f"unknown agency {code!r}") from None

    def category(self, code: str) -> Category:
        try:
            return self.categories[code]
        except KeyError:
            raise UnknownCode(f"unknown category {code!r}") from None

    def categories_for(self, region_code: str) -> list[Category]:
        """The categories offered in a region, in catalog order (all of them unless the
        region lists its own). Raises ``UnknownCode`` for an unknown region."""
        region = self.region(region_code)
        if region.categories is None:
            return list(self.categories.values())
        allowed = set(region.categories)
        return [c for c in self.categories.values() if c.code in allowed]

    def agencies_in(self, region_code: str) -> list[Agency]:
        """The agencies of a region, in catalog order. Raises ``UnknownCode``."""
        self.region(region_code)
        return [a for a in self.agencies.values() if a.region == region_code]

    def unit(self, code: str) -> Unit:
        try:
            return self.units[code]
        except KeyError:
            raise UnknownCode(f"unknown service unit {code!r}") from None

    def units_in(self, region_code: str) -> list[Unit]:
        """The service units of a region's agencies, agency by agency in catalog
        order. Raises ``UnknownCode`` for an unknown region."""
        self.region(region_code)
        return [u for u in self.units.values()
                if self.agencies[u.agency].region == region_code]

    def region_of_unit(self, code: str) -> Region:
        """The region of a unit (its agency's). Raises ``UnknownCode``."""
        return self.regions[self.agencies[self.unit(code).agency].region]

    def inspectorate(self, region_code: str) -> Agency | None:
        """The region's inspectorate (the agency with the role ``inspectorate``), which
        level-2 escalations notify; None if the catalog names none."""
        return next((a for a in self.agencies.values()
                     if a.region == region_code and "inspectorate" in a.roles), None)

    # --- routing ------------------------------------------------------------------

    def route(self, region: str, category: str, text: str) -> RouteDecision:
        """Decide the responsible agency: the region's rule for the category; else its
        first keyword rule (in file order) found as a whole word or phrase in ``text``,
        ignoring case; else the region's triage queue (``agency=None``).

        Raises ``UnknownCode`` for an unknown region; an unknown category simply has
        no category rule, so the complaint still reaches a keyword rule or triage.
        """
        self.region(region)
        agency = self._category_rules.get((region, category))
        if agency is not None:
            return RouteDecision(agency=agency, rule=f"category:{region}:{category}")
        for rule in self._keyword_rules[region]:
            if rule.pattern.search(text or ""):
                return RouteDecision(agency=rule.agency, rule=f"keyword:{region}:{rule.keyword}")
        return RouteDecision(agency=None, rule="triage")

    def category_rule(self, region: str, category: str) -> str | None:
        """The agency a category rule sends (region, category) to, if any."""
        return self._category_rules.get((region, category))

    # --- policy -------------------------------------------------------------------

    def policy(self, region: str, agency: str | None = None,
               category: str | None = None) -> Policy:
        """The deadline policy: national defaults, then the catalog's
        ``defaults.policy``, then the region's, then the agency's, then the agency's
        override for the category. ``resolve_days`` follows the category's class
        ("normative" without a category). Raises ``UnknownCode`` for an unknown code
        or an agency of another region."""
        reg = self.region(region)
        cat = self.category(category) if category is not None else None
        layers: list[PolicyOverride | None] = [self.default_policy, reg.policy]
        if agency is not None:
            ag = self.agency(agency)
            if ag.region != reg.code:
                raise UnknownCode(f"agency {agency!r} is not in region {region!r}")
            layers.append(ag.policy)
            if cat is not None:
                layers.append(ag.category_policies.get(cat.code))
        return Policy.resolve(layers, cat.resolution_class if cat else None)


# --- loading -----------------------------------------------------------------------

def load_catalog(path: str | Path) -> Catalog:
    """Read, validate and index the catalog at ``path``.

    Raises ``CatalogError`` (``<file>:<line>: <what is wrong>``) if the file cannot be
    read, is not valid YAML, or breaks any rule of the format (docs/CATALOG.md).
    """
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CatalogError(name, [(1, f"cannot read the catalog: {e}")]) from e
    return parse_catalog(text, name)


def parse_catalog(text: str, source: str = "<catalog>") -> Catalog:
    """Like ``load_catalog`` for YAML text; ``source`` names it in error messages."""
    try:
        raw = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.constructor.ConstructorError as e:
        # Our own checks while building values: duplicate keys, impossible dates.
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise CatalogError(source, [(line, str(e.problem or e.context))]) from e
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = ": ".join(p for p in (e.context, e.problem) if p)
        if e.context_mark is not None and e.context_mark.line + 1 != line:
            problem += f" (started on line {e.context_mark.line + 1})"
        raise CatalogError(source, [(line, f"YAML syntax error: {problem}")]) from e
    except yaml.YAMLError as e:
        raise CatalogError(source, [(1, f"YAML error: {e}")]) from e
    if raw is None:
        raise CatalogError(source, [(1, "the catalog is empty")])
    if not isinstance(raw, dict):
        raise CatalogError(source, [(getattr(raw, "line", 1),
                                     "the catalog must be a mapping with regions, agencies, "
                                     "categories and rules")])
    try:
        doc = CatalogFile.model_validate(raw)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            line, where = _line_of(raw, tuple(err["loc"]))
            msg = err["msg"].removeprefix("Value error, ")
            if where.endswith("resolve_days") and err["type"] in _NOT_A_MAP_OR_NUMBER:
                if isinstance(err.get("input"), dict):
                    continue  # a map: its own entries' errors say what is wrong
                msg = _RESOLVE_SHAPE
            problems.append((line, _where(where, msg)))
        raise CatalogError(source, _dedupe(problems)) from e
    problems = [(_line_of(raw, loc)[0], _where(_line_of(raw, loc)[1], msg))
                for loc, msg in _cross_check(doc)]
    if problems:
        raise CatalogError(source, _dedupe(problems))
    return Catalog(doc, source)


def _dedupe(problems: Iterable[tuple[int, str]]) -> list[tuple[int, str]]:
    """One message per place: a value that fits no branch of a union (``resolve_days``
    is a map or a number) fails every branch, and the first branch says it best."""
    seen: set[tuple[int, str]] = set()
    kept = []
    for line, message in problems:
        where = (line, message.split(": ", 1)[0] if ": " in message else message)
        if where not in seen:
            seen.add(where)
            kept.append((line, message))
    return kept


def _duplicates(items: Iterable[tuple[Loc, str]], what: str) -> list[tuple[Loc, str]]:
    seen: set[str] = set()
    found = []
    for loc, code in items:
        if code in seen:
            found.append((loc, f"duplicate {what} {code!r}"))
        seen.add(code)
    return found


def _cross_check(doc: CatalogFile) -> list[tuple[Loc, str]]:
    """Every reference resolves, codes are unique, overrides fit their level."""
    problems: list[tuple[Loc, str]] = []
    problems += _duplicates(((("categories", i, "code"), c.code)
                             for i, c in enumerate(doc.categories)), "category code")
    problems += _duplicates(((("regions", i, "code"), r.code)
                             for i, r in enumerate(doc.regions)), "region code")
    problems += _duplicates(((("agencies", i, "code"), a.code)
                             for i, a in enumerate(doc.agencies)), "agency code")
    categories = {c.code: c for c in doc.categories}
    regions = {r.code: r for r in doc.regions}
    agencies = {a.code: a for a in doc.agencies}

    def offered(region: Region, code: str) -> bool:
        return region.categories is None or code in region.categories

    if isinstance(doc.defaults.policy.resolve_days, int):
        problems.append((("defaults", "policy", "resolve_days"), _RESOLVE_MAP))

    for i, reg in enumerate(doc.regions):
        for j, code in enumerate(reg.categories or ()):
            if code not in categories:
                problems.append((("regions", i, "categories", j), f"unknown category {code!r}"))
        if reg.policy and isinstance(reg.policy.resolve_days, int):
            problems.append((("regions", i, "policy", "resolve_days"), _RESOLVE_MAP))

    for i, agency in enumerate(doc.agencies):
        home = regions.get(agency.region)
        if home is None:
            problems.append((("agencies", i, "region"), f"unknown region {agency.region!r}"))
        if agency.policy and isinstance(agency.policy.resolve_days, int):
            problems.append((("agencies", i, "policy", "resolve_days"), _RESOLVE_MAP))
        for code in agency.category_policies:
            loc: Loc = ("agencies", i, "category_policies", code)
            if code not in categories:
                problems.append((loc, f"unknown category {code!r}"))
            elif home is not None and not offered(home, code):
                problems.append((loc, f"category {code!r} is not offered in {home.code}"))

    problems += _duplicates(((("units", i, "code"), u.code)
                             for i, u in enumerate(doc.units)), "unit code")
    for i, unit in enumerate(doc.units):
        if unit.agency not in agencies:
            problems.append((("units", i, "agency"), f"unknown agency {unit.agency!r}"))
        if unit.code in agencies and unit.code != unit.agency:
            problems.append((("units", i, "code"),
                             f"{unit.code!r} is the code of another agency"))

    category_rules: dict[tuple[str, str], Loc] = {}
    keywords: dict[tuple[str, str], Loc] = {}
    for i, rule in enumerate(doc.rules):
        region = regions.get(rule.region)
        if region is None:
            problems.append((("rules", i, "region"), f"unknown region {rule.region!r}"))
        target = agencies.get(rule.agency)
        if target is None:
            problems.append((("rules", i, "agency"), f"unknown agency {rule.agency!r}"))
        elif target.region != rule.region:
            problems.append((("rules", i, "agency"),
                             f"agency {rule.agency!r} belongs to {target.region}, "
                             f"not to {rule.region}"))
        for j, code in enumerate(rule.categories):
            loc = ("rules", i, "categories", j)
            if code not in categories:
                problems.append((loc, f"unknown category {code!r}"))
            elif region is not None and not offered(region, code):
                problems.append((loc, f"category {code!r} is not offered in {region.code}"))
            if (rule.region, code) in category_rules:
                problems.append((loc, f"a rule for {rule.region}/{code} exists already"))
            category_rules.setdefault((rule.region, code), loc)
        for j, keyword in enumerate(rule.keywords):
            loc = ("rules", i, "keywords", j)
            norm = " ".join(keyword.lower().split())
            if (rule.region, norm) in keywords:
                problems.append((loc, f"keyword {norm!r} is already routed in {rule.region}"))
            keywords.setdefault((rule.region, norm), loc)
    return problems


_NOT_A_MAP_OR_NUMBER = frozenset({"dict_type", "int_type", "int_parsing", "int_from_float"})
_RESOLVE_SHAPE = ("must map resolution classes to days, e.g. {light: 2, investigation: 60} "
                  "(in category_policies also a single number of days)")
_RESOLVE_MAP = ("must map resolution classes to days (light, normative, no_investigation, "
                "investigation); a single number is allowed only in category_policies")
