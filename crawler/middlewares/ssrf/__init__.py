"""SSRF guard: no request (plain, redirected, or made by a rendered page) reaches a loopback,
private or otherwise non-public address or a non-http(s) scheme unless its host was declared.

Its parts: the policy (``crawler.address_policy``, pure functions), the downloader middleware
(``guard``), the connect-time resolver (``resolver``), the Playwright hooks and the browser
proxy (``rendered``, ``proxy``) and the state they share (``registry``). The names below are
the ones settings refer to (``crawler.middlewares.ssrf.SSRFGuardMiddleware`` ...)."""

from __future__ import annotations

from crawler.middlewares.ssrf.guard import SSRFGuardMiddleware
from crawler.middlewares.ssrf.registry import REGISTRY, DNSCache, SSRFRefused
from crawler.middlewares.ssrf.rendered import abort_request, init_page, judge_browser_url
from crawler.middlewares.ssrf.resolver import GuardedResolver

__all__ = [
    "REGISTRY",
    "DNSCache",
    "GuardedResolver",
    "SSRFGuardMiddleware",
    "SSRFRefused",
    "abort_request",
    "init_page",
    "judge_browser_url",
]
