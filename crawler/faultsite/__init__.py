"""A hostile news site on 127.0.0.1 for checking the crawler's defences: every path is one
fault (status codes, resets, trickles, bombs, lying charsets, hostile XML, links to private
addresses) next to healthy articles, with the outcome the crawl must reach for each. The
fault tests and the fault suite (``make faults``) crawl it."""

from __future__ import annotations

from crawler.faultsite.cases import CASES, HEALTHY, SSRF_VECTORS, Case
from crawler.faultsite.pages import LOL, XXE, article_html, article_title, article_words
from crawler.faultsite.runs import (
    COMMON,
    ROOT,
    CrawlResult,
    crawl,
    fault_crawl,
    integrity,
    query,
    stored_paths,
)
from crawler.faultsite.server import CanaryServer, FaultServer

__all__ = [
    "CASES",
    "COMMON",
    "HEALTHY",
    "LOL",
    "ROOT",
    "SSRF_VECTORS",
    "XXE",
    "CanaryServer",
    "Case",
    "CrawlResult",
    "FaultServer",
    "article_html",
    "article_title",
    "article_words",
    "crawl",
    "fault_crawl",
    "integrity",
    "query",
    "stored_paths",
]
