"""The deployment catalog: regions (time zones, days off), agencies, complaint
categories, routing rules and deadline policies, from one YAML file per deployment
(``AWASI_CATALOG``; the demo catalog ships as ``demo.yaml`` next to this file).

    catalog = load_catalog(settings.catalog)   # CatalogError: "<file>:<line>: ..."
    decision = catalog.route("MDN", "asn-pungli", text)
    policy = catalog.policy("MDN", decision.agency, "asn-pungli")
    due = catalog.regions["MDN"].calendar.add_working_days(now, policy.resolve_days)

The format is described in docs/CATALOG.md.
"""

from awasi.catalog.loader import Catalog, CatalogError, UnknownCode, load_catalog, parse_catalog
from awasi.catalog.models import (
    RESOLUTION_CLASSES,
    Agency,
    Category,
    Policy,
    PolicyOverride,
    Region,
    RouteDecision,
    Rule,
    Unit,
)

__all__ = [
    "RESOLUTION_CLASSES",
    "Agency",
    "Catalog",
    "CatalogError",
    "Category",
    "Policy",
    "PolicyOverride",
    "Region",
    "RouteDecision",
    "Rule",
    "UnknownCode",
    "Unit",
    "load_catalog",
    "parse_catalog",
]
