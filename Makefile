# The two commands of the README (make demo, make test) and the benchmarks.
VENV ?= .venv
PY := $(VENV)/bin/python
SCRAPY := $(VENV)/bin/scrapy
PYTEST_ARGS ?=

.PHONY: setup demo datasette test test-fast docs lint bench bench-clean bench-tag bench-dedupe bench-reposts bench-distributed faults

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -U pip
	$(VENV)/bin/pip install -q -e ".[datasette,redis]" --group dev
	touch $@

setup: $(VENV)/.installed
	@scripts/ensure-browser.sh $(PY)

demo: setup  ## serve the bundled demo sites on 127.0.0.1 and crawl them into data/news.db
	$(SCRAPY) demo

datasette: setup  ## browse data/news.db in Datasette (canned queries, Korea chart) on :8001
	$(SCRAPY) datasette

test: setup  ## the whole test suite (offline: fixture sites on 127.0.0.1)
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: setup  ## the unit tier only: functions called in-process, no crawl, under a minute
	$(PY) -m pytest -m unit $(PYTEST_ARGS)

docs: setup  ## regenerate docs/settings.md from the settings declared in crawler/config.py
	$(PY) -m crawler.config > docs/settings.md

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench-clean: setup  ## extraction + cleaning quality on ../shared/extraction-bench and extraction-news
	$(PY) bench/bench_clean.py $(BENCH_CLEAN_ARGS)

bench-tag: setup  ## Korea tagging on ../shared/korea-tagging/dev.csv and dev2.csv vs the /korea/i regex
	$(PY) bench/bench_tag.py

BENCH_ARGS ?= --full
bench: setup  ## throughput on a local nginx mirror: ceiling, naive, project, news-please; scale
	$(PY) -m bench.perf $(BENCH_ARGS)

faults: setup  ## fault suite: hostile pages, kills, locked/full disks, SSRF vectors (figures)
	$(PY) bench/fault_suite.py

bench-dedupe: setup  ## same-story links on a built corpus; 100k-story index memory
	$(PY) bench/bench_dedupe.py

BENCH_REPOSTS_ARGS ?= --seeds 1 2 3
bench-reposts: setup  ## re-post network lab (../shared/repost-lab) crawled twice per seed: spam, loss, dedupe
	$(PY) bench/bench_reposts.py $(BENCH_REPOSTS_ARGS)

bench-distributed: setup  ## 1, 2, 3 workers + one writer on Redis vs one machine (perf mirror)
	$(PY) bench/bench_distributed.py
