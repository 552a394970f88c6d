"""Which service, version (subset) and faults one request gets (pure: the rng is passed in).

The traffic config is compiled here once per load into a `RouteTable`, so a request costs a
few string comparisons: edge rules first (any path to any service, weighted across services),
else the prefix table (`routes.py`); then the chosen service's own rules pick a subset (header
match, else a weighted draw) and add their faults. First matching rule wins at each level.
"""

from __future__ import annotations

import bisect
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import accumulate
from urllib.parse import unquote

from msashop.gateway.routes import resolve
from msashop.gateway.traffic import Destination, Fault, HTTPRoute, RequestMatch, StringMatch, TrafficConfig

Test = Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class Plan:
    service: str
    path: str  # the path the service sees
    subset: str | None  # a version tag; None: any instance of the service
    faults: tuple[Fault, ...] = ()


def _test(match: StringMatch) -> Test:
    if match.exact is not None:
        exact = match.exact
        return lambda value: value == exact
    if match.prefix is not None:
        prefix = match.prefix
        return lambda value: value.startswith(prefix)
    pattern = re.compile(match.regex or "")
    return lambda value: pattern.fullmatch(value) is not None


class _Match:
    __slots__ = ("headers", "method", "uri", "uri_prefix")

    def __init__(self, match: RequestMatch) -> None:
        self.uri = _test(match.uri) if match.uri else None
        self.uri_prefix = match.uri.prefix if match.uri else None  # what a rewrite replaces
        self.method = _test(match.method) if match.method else None
        self.headers = tuple((name, _test(m)) for name, m in match.headers.items())

    def holds(self, method: str, path: str, headers: Mapping[str, str]) -> bool:
        if self.uri is not None and not self.uri(path):
            return False
        if self.method is not None and not self.method(method):
            return False
        for name, test in self.headers:
            value = headers.get(name)
            if value is None or not test(value):
                return False
        return True


_EVERYTHING = _Match(RequestMatch())


class _Rule:
    __slots__ = ("cumulative", "destinations", "fault", "matches", "rewrite")

    def __init__(self, rule: HTTPRoute) -> None:
        self.matches = tuple(_Match(m) for m in rule.match) or (_EVERYTHING,)
        self.destinations = tuple(d.destination for d in rule.route)
        self.cumulative = tuple(accumulate(d.weight or 0 for d in rule.route))
        self.rewrite = rule.rewrite.uri if rule.rewrite else None
        self.fault = rule.fault

    def matching(self, method: str, path: str, headers: Mapping[str, str]) -> _Match | None:
        for match in self.matches:
            if match.holds(method, path, headers):
                return match
        return None

    def destination(self, rng: random.Random) -> Destination | None:
        if len(self.destinations) < 2:
            return self.destinations[0] if self.destinations else None
        draw = rng.random() * self.cumulative[-1]
        return self.destinations[bisect.bisect_right(self.cumulative, draw)]

    def rewritten(self, path: str, matched: _Match) -> str | None:
        """Istio's rewrite.uri: replaces the matched prefix, or the whole path."""
        if self.rewrite is None:
            return None
        if matched.uri_prefix is not None:
            return self.rewrite + path[len(matched.uri_prefix) :]
        return self.rewrite


def _has_dot_segment(path: str) -> bool:
    # Dot segments could step out of the prefix that chose the service: refused everywhere.
    if "/." not in path and "%2e" not in path.lower():
        return False
    return any(unquote(s) in (".", "..") for s in path.split("/"))


class RouteTable:
    def __init__(self, config: TrafficConfig) -> None:
        self.edge = tuple(_Rule(r) for r in config.http)
        self.services = {name: tuple(_Rule(r) for r in s.http) for name, s in config.services.items()}

    def plan(self, method: str, path: str, headers: Mapping[str, str], rng: random.Random) -> Plan | None:
        """Where `method path` goes; None when nothing serves the path (a 404)."""
        if _has_dot_segment(path):
            return None
        faults: list[Fault] = []
        subset: str | None = None
        for rule in self.edge:
            matched = rule.matching(method, path, headers)
            if matched is None:
                continue
            chosen = rule.destination(rng)
            assert chosen is not None and chosen.host is not None  # checked when loaded
            service, subset = chosen.host, chosen.subset
            upstream_path = rule.rewritten(path, matched) or _default_path(path)
            if rule.fault:
                faults.append(rule.fault)
            break
        else:
            target = resolve(path)
            if target is None:
                return None
            service, upstream_path = target.service, target.path
        for rule in self.services.get(service, ()):
            if rule.matching(method, path, headers) is None:
                continue
            if rule.fault:
                faults.append(rule.fault)
            if subset is None and (own := rule.destination(rng)) is not None:
                subset = own.subset
            break
        return Plan(service, upstream_path, subset, tuple(faults))


def _default_path(path: str) -> str:
    """The path a service sees without a rewrite: the prefix table's, else `/api` stripped."""
    target = resolve(path)
    if target is not None:
        return target.path
    return path[len("/api") :] if path.startswith("/api/") else path
