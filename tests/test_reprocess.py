"""``scrapy reprocess``: stored HTML through extraction and the pipeline steps again, after a
lexicon or rules change; what changed is reported, and a second run changes nothing."""

from __future__ import annotations

import json

import pytest
from scrapy.settings import Settings

from crawler.reprocess import DuplicateCheck, Steps, format_outcome, reprocess
from crawler.storage.articles import SqliteArticles
from crawler.storage.connection import Connection
from tests.conftest import ROOT, rows, scrapy

COFFEE = "/a/2026/11/coffee-harvest.html"
PARAGRAPHS = [
    (
        "The city council approved a new budget for public transport on Thursday after a long "
        "debate about bus lanes, tram extensions and the cost of new stations in the north."
    ),
    (
        "Officials said the plan would be funded by a mix of local taxes and national grants, "
        "and that construction of the first tram line could begin as early as next spring."
    ),
    (
        "Opposition members criticised the timetable, arguing that the city had repeatedly "
        "failed to deliver transport projects on schedule and within the agreed budget."
    ),
]
TITLE = "Council approves transport budget"


def _lexicon_with_coffee(tmp_path):
    """The project's lexicon plus one (absurd) North Korea term: "coffee"."""
    text = (ROOT / "data" / "korea_lexicon.toml").read_text(encoding="utf-8")
    anchor = '  { id = "pyongyang",'
    assert text.count(anchor) == 1
    path = tmp_path / "lexicon.toml"
    path.write_text(
        text.replace(
            anchor, '  { id = "coffee_town", patterns = ["coffee", "growers"] },\n' + anchor
        ),
        encoding="utf-8",
    )
    return path


def _reprocess(db, *args):
    result = scrapy("reprocess", "--json", *args, db=db)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_lexicon_change_retags_stored_stories_once(sites, db, tmp_path):
    base = sites.base_urls["pub"]
    crawl = scrapy("crawl", "feed", "-a", f"url={base}/atom.xml", "-a", "name=herald", db=db)
    assert crawl.returncode == 0, crawl.stderr[-3000:]
    stored = {r["url"]: r for r in rows(db, "SELECT * FROM articles")}
    assert json.loads(stored[base + COFFEE]["tags"]) == []
    # Unchanged rules and lexicon: reprocessing reproduces the crawl exactly.
    same = _reprocess(db)
    assert (same["processed"], same["unchanged"], same["fields_changed"]) == (2, 2, {})
    assert same["steps"][:3] == ["validate", "clean", "tag"]

    lexicon = _lexicon_with_coffee(tmp_path)
    changed = _reprocess(db, "-s", f"TAG_LEXICON_FILE={lexicon}")
    assert changed["texts_changed"] == 0
    assert {"korea", "north_korea"} <= set(changed["tags_gained"])
    assert changed["tags_lost"] == {}
    assert [c["url"] for c in changed["changes"]] == [base + COFFEE]
    assert {"tags", "is_korea", "korea_score"} <= set(changed["changes"][0]["fields"])
    coffee = rows(db, "SELECT tags, is_korea FROM articles WHERE url = ?", (base + COFFEE,))[0]
    assert coffee["is_korea"] == 1
    assert {"korea", "north_korea"} <= set(json.loads(coffee["tags"]))
    # The full-text index follows the update, and a second run changes nothing.
    again = _reprocess(db, "-s", f"TAG_LEXICON_FILE={lexicon}")
    assert (again["unchanged"], again["fields_changed"], again["new_duplicates"]) == (2, {}, [])
    # --site / --since narrow the set; a site with nothing stored is a usage error.
    assert _reprocess(db, "--site", "herald", "--dry-run")["processed"] == 2
    nobody = scrapy("reprocess", "--site", "nobody", db=db)
    assert nobody.returncode == 2
    assert "--site 'nobody': no stored articles of that site" in nobody.stderr
    assert _reprocess(db, "--since", "2000-01-01", "--dry-run")["processed"] == 2


def test_bad_lexicon_is_a_usage_error(db, tmp_path):
    Connection.acquire(db).release()
    bad = tmp_path / "bad.toml"
    bad.write_text("version = 1\n[[group]]\nname = 1\n", encoding="utf-8")
    result = scrapy("reprocess", "-s", f"TAG_LEXICON_FILE={bad}", db=db)
    assert result.returncode == 2
    assert str(bad) in result.stderr
    assert "Traceback" not in result.stderr


def _page(extra: str) -> str:
    body = "".join(f"<p>{p}</p>" for p in [*PARAGRAPHS, extra])
    return (
        f"<html><head><title>{TITLE}</title></head><body><article><h1>{TITLE}</h1>{body}"
        "</article></body></html>"
    )


def test_rules_change_finds_new_duplicates_once(tmp_path):
    """Two re-posts stored while the spam footers were not yet cleaned: reprocessing with
    today's rules cleans both texts, which makes the second an exact duplicate of the first."""
    pytest.importorskip("pipelines.dedupe")
    db = tmp_path / "news.db"
    archive = Connection.acquire(db)
    for n, footer in enumerate(("Join us on Telegram for the latest updates!",
                                "Previous Post Next Post")):  # fmt: skip
        old_text = "\n\n".join([*PARAGRAPHS, footer])
        SqliteArticles(archive).insert(
            {"url": f"https://blog{n}.example/2026/11/budget.html", "site": f"blog{n}",
             "domain": f"blog{n}.example", "title": TITLE, "text": old_text,
             "text_hash": f"old-{n}", "fetched_at": f"2026-11-2{n}T00:00:00+00:00",
             "language": "en", "content_type": "text/html"},
            html=_page(footer),
        )  # fmt: skip
    archive.flush()
    settings = Settings()
    settings.setmodule("crawler.settings")
    settings.set("DB_PATH", str(db))
    try:
        outcome = reprocess(
            archive, Steps.from_settings(settings), DuplicateCheck(archive, settings)
        )
        assert outcome.processed == 2
        assert outcome.texts_changed == 2
        assert outcome.tags_gained == {}
        assert [(d["id"], d["kind"], d["duplicate_of"]) for d in outcome.new_duplicates] == [
            (2, "exact", 1)
        ]
        text = format_outcome(outcome)
        assert "texts changed:    2" in text
        assert "#2 https://blog1.example/2026/11/budget.html: exact duplicate of #1" in text
        second = reprocess(
            archive, Steps.from_settings(settings), DuplicateCheck(archive, settings)
        )
        assert (second.unchanged, second.new_duplicates) == (2, [])
    finally:
        archive.release()
    texts = rows(db, "SELECT text, removed FROM articles ORDER BY id")
    assert texts[0]["text"] == texts[1]["text"] == "\n\n".join(PARAGRAPHS)
    assert {r["rule"] for r in json.loads(texts[1]["removed"])} >= {"post_navigation"}
    dupes = rows(db, "SELECT url, article_id, kind, via FROM duplicates")
    assert dupes == [
        {"url": "https://blog1.example/2026/11/budget.html", "article_id": 1, "kind": "exact",
         "via": "reprocess"}
    ]  # fmt: skip
