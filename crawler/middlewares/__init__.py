"""Downloader middlewares of the crawler (SSRF guard, Retry-After, incremental crawl)."""
