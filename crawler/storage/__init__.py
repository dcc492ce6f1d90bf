"""The SQLite archive, one module per concern; the only package that writes SQL.

- ``connection``: opening a file (WAL, busy timeout, migrations), one shared connection per
  file per process, batched transactions; ``SqliteStore``, the base of the stores below.
- ``schema``: the migrations and ``SCHEMA_VERSION``.
- ``errors``: ``ArchiveError`` and one-sentence descriptions of database failures.
- ``articles``: stories, sightings and versions (``SqliteArticles``).
- ``index``: the dedupe step's near-duplicate index and lookups (``SqliteStoryIndex``).
- ``incremental``: URL memory and the conditional-GET cache (``SqliteUrlMemory``,
  ``SqliteHttpCache``).
- ``boilerplate``: learned boilerplate sightings (``SqliteBoilerplate``).
- ``runs``: the ``runs`` table (``SqliteRuns``).
- ``pages``: stored HTML and rows as ``scrapy reprocess`` rewrites them (``SqliteStoredPages``).
- ``reports``: read-only queries of ``scrapy report``, the Datasette chart and the demo.
- ``protocols``: what the pipeline steps and middlewares need, implemented here and, for a
  distributed worker, in Redis (``crawler/distributed/shared.py``).

Nothing is imported here: the protocols stay importable without sqlite-utils.
"""
