"""The bundled demo: one command serves the demo sites and crawls them all."""

from __future__ import annotations

import json
import re

from tests.conftest import ROOT, rows, scrapy

SEED_BODY = (
    (ROOT / "tests/fixtures/clean/seed_expected_body.txt").read_text(encoding="utf-8").strip()
)
EXPECTED = json.loads((ROOT / "data" / "demo" / "expected.json").read_text(encoding="utf-8"))


def _fill(text: str, bases: dict[str, str]) -> str:
    return re.sub(r"\{\{(\w+)\}\}", lambda m: bases[m[1]], text)


def test_demo_stores_every_article_with_title_date_and_text(db):
    result = scrapy("demo", "--port", "0", db=db)
    assert result.returncode == 0, result.stderr[-3000:]
    served = re.search(r"^Demo sites: (.+)$", result.stdout, re.MULTILINE)
    bases = dict(pair.split("=", 1) for pair in served.group(1).split(", "))
    assert "7 sites, " in result.stdout

    stored = {r["url"]: r for r in rows(db, "SELECT * FROM articles")}
    for url_template, want in EXPECTED["articles"].items():
        url = _fill(url_template, bases)
        if want.get("duplicate_of"):
            continue  # a re-post: checked with the dedupe step
        assert url in stored, f"not stored: {url}"
        got = stored[url]
        assert got["title"] == want["title"], url
        assert got["published_at"] == want["published_at"], url
        assert got["language"] == want["language"], url
        assert want["first_sentence"] in got["text"], url
        assert want["last_sentence"] in got["text"], url
        assert json.loads(got["authors"]) == want["authors"], url
        tags = json.loads(got["tags"])
        sides = {t for t in tags if t in ("north_korea", "south_korea")}
        if want["korea"] == "core":
            assert got["is_korea"] == 1, (url, tags)
            assert sides == set(want["subtags"]), (url, tags)
            assert json.loads(got["korea_evidence"]), url
        else:
            assert got["is_korea"] == 0, (url, tags)
            assert ("korea_mention" in tags) == (want["korea"] == "mention"), (url, tags)

    # The re-post blog's spam is gone, every line of it recorded as removed.
    seed_url = _fill("{{blog}}/2026/11/north-korea-accuses-us-asian-nato.html", bases)
    seed = stored[seed_url]
    assert seed["text"] == SEED_BODY
    removed = {r["text"] for r in json.loads(seed["removed"])}
    for url_template, want in EXPECTED["articles"].items():
        row = stored.get(_fill(url_template, bases))
        for line in want.get("spam_lines", []) + want.get("boilerplate_lines", []):
            if row is not None:
                assert line not in row["text"], (url_template, line)
    assert {"Post a Comment", "Previous Post Next Post"} <= removed

    runs = rows(db, "SELECT site, status FROM runs")
    assert sorted(r["site"] for r in runs) == sorted(EXPECTED["sites"])
    assert {r["status"] for r in runs} == {"finished"}
    # The summary names each site with its counts.
    for site in EXPECTED["sites"]:
        assert re.search(rf"^{re.escape(site)}\s+finished", result.stdout, re.MULTILINE)
