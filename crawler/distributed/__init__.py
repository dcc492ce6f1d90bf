"""Distributed mode: many crawl workers share one frontier on Redis (scrapy-redis) and one
writer (``scrapy ingest``) stores into the SQLite file. Off unless ``REDIS_URL`` is set."""
