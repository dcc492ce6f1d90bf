"""Daily use from the command line: one-line errors naming the path, exit codes, progress in a
terminal only, what a summary says, and the commands a user is told to type."""

from __future__ import annotations

import ctypes
import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crawler.storage.articles import SqliteArticles
from tests.conftest import ROOT, rows, scrapy
from tests.opsdata import BODY, build_known_db
from tests.test_crawlall import feed, write_sites
from tests.test_crawlall import hang as hang  # noqa: PLC0414 - the fixture, for pytest

VENV_BIN = Path(sys.executable).parent


def run(
    *args: str,
    db: Path | None = None,
    preexec=None,
    stderr_tty: bool = False,
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    """``python -m scrapy ARGS`` like ``tests.conftest.scrapy``; ``preexec`` runs in the child
    before exec; ``stderr_tty`` gives the child a terminal as stderr (read back as text)."""
    cmd = [sys.executable, "-m", "scrapy", *args]
    if db is not None:
        cmd += ["-s", f"DB_PATH={db}"]
    cmd += ["-s", "AUTOTHROTTLE_ENABLED=False", "-s", "DOWNLOAD_DELAY=0"]
    if not stderr_tty:
        return subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False,
            preexec_fn=preexec,
        )  # fmt: skip
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=slave, text=True,
        preexec_fn=preexec,  # noqa: PLW1509 - no threads started by then
    )  # fmt: skip
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed its end
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    os.close(master)
    stdout, _ = proc.communicate(timeout=30)
    err = b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, err)


def drop_root_file_override() -> None:
    """Let root see file permissions like anyone else (drop CAP_DAC_OVERRIDE and
    CAP_DAC_READ_SEARCH from the bounding set before exec)."""
    if os.geteuid() == 0:
        libc = ctypes.CDLL(None, use_errno=True)
        for cap in (1, 2):
            libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP


def permissions_apply(path: Path) -> bool:
    """Whether a child started with ``drop_root_file_override`` is refused writing ``path``."""
    probe = subprocess.run(
        [sys.executable, "-c", f"open({str(path / 'probe')!r}, 'w')"],
        preexec_fn=drop_root_file_override,
        capture_output=True,
        check=False,
    )
    return probe.returncode != 0


def one_line(text: str) -> str:
    assert text.count("\n") == 1, text
    assert "Traceback" not in text
    return text.strip()


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the database and the lock, checked before anything starts --------------------------------
@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: p.mkdir(), "is a folder; give the database file in it"),
        (lambda p: None, "does not exist (mistyped? create it first)"),
        (lambda p: p.write_text("not a database\n"), "is not an SQLite database"),
    ],
    ids=["folder", "missing-folder", "not-sqlite"],
)
def test_unusable_db_path_is_one_line_with_exit_2(tmp_path, make, expected):
    path = tmp_path / "news.db"
    if expected.startswith("does not exist"):
        path = tmp_path / "typo" / "news.db"
    make(path)
    sites_file = write_sites(tmp_path / "sites.toml", herald=feed("http://127.0.0.1:9/feed.rss"))
    for args in (
        ("crawlall", "--sites", sites_file),
        ("crawl", "feed", "-a", "url=http://127.0.0.1:9/feed.rss"),
        ("reprocess",),
        ("report",),
    ):
        result = run(*args, db=path)
        assert result.returncode == 2, (args, result.stderr)
        line = one_line(result.stderr)
        assert str(path) in line
        assert expected in line
        assert result.stdout == ""
    assert not (tmp_path / "typo").exists()  # a mistyped folder is not created
    assert not (tmp_path / "logs").exists()


def test_read_only_folder_and_unusable_lock_file_exit_1_in_one_line(tmp_path):
    sites_file = write_sites(tmp_path / "sites.toml", herald=feed("http://127.0.0.1:9/feed.rss"))
    # A lock file that cannot be opened (here: a folder in its place).
    db = tmp_path / "news.db"
    (tmp_path / "news.db.lock").mkdir()
    result = run("crawlall", "--sites", sites_file, db=db)
    assert result.returncode == 1
    assert one_line(result.stderr) == (
        f"crawlall: lock file {tmp_path / 'news.db.lock'} cannot be opened: Is a directory"
    )
    # A folder this user may not write.
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if not permissions_apply(folder):
            pytest.skip("cannot make a folder read-only for this user (root without prctl)")
        for args in (("crawlall", "--sites", sites_file), ("crawl", "herald", "-s",
                     f"SITES_FILE={sites_file}")):  # fmt: skip
            result = run(*args, db=folder / "news.db", preexec=drop_root_file_override)
            assert result.returncode == 1, result.stderr
            assert one_line(result.stderr) == (
                f"{args[0]}: database {folder / 'news.db'} cannot be written: folder {folder} "
                "is not writable by this user"
            )
    finally:
        folder.chmod(0o755)


def test_read_only_database_is_read_by_report_and_refused_by_reprocess(tmp_path):
    db = build_known_db(tmp_path / "news.db")
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode = DELETE")  # a copy as another tool leaves it
    conn.close()
    db.chmod(0o444)
    tmp_path.chmod(0o555)
    try:
        if not permissions_apply(tmp_path):
            pytest.skip("cannot make a file read-only for this user (root without prctl)")
        report = run("report", "--since", "2026-11-25", db=db, preexec=drop_root_file_override)
        assert report.returncode == 0, report.stderr
        assert "seoul-daily" in report.stdout
        export = run("export", "--korea", db=db, preexec=drop_root_file_override)
        assert export.returncode == 0, export.stderr
        assert len(export.stdout.splitlines()) == 4
        again = run("reprocess", db=db, preexec=drop_root_file_override)
        assert again.returncode == 1
        assert one_line(again.stderr).startswith(f"reprocess: database {db} is read-only")
    finally:
        tmp_path.chmod(0o755)
        db.chmod(0o644)


# -- usage errors: one line, exit 2, nothing started ------------------------------------------
def test_usage_errors_are_one_line_without_banner(sites, db):
    url = sites.base_urls["pub"] + "/feed.rss"
    typo = run("crawl", "feed", "-a", f"url={url}", "-a", "max_article=1", db=db)
    assert typo.returncode == 2
    assert one_line(typo.stderr).startswith(
        "scrapy crawl: error: -a arguments: key 'max_article': unknown key, did you mean "
        "'max_articles'? (known keys: allowed_domains, "
    )
    assert not db.exists()  # nothing crawled
    bad_value = run("crawl", "feed", "-a", f"url={url}", "-a", "max_articles=some", db=db)
    assert bad_value.returncode == 2
    assert "key 'max_articles': 'some' is not a whole number" in one_line(bad_value.stderr)
    for args, message in [
        (("crawl", "nosuch"), "scrapy crawl: error: no spider or site named 'nosuch'"),
        (("report", "--limit", "x"), "scrapy report: error: argument --limit: invalid int"),
        (("crawlall", "extra"), "scrapy crawlall: error: unexpected arguments: extra"),
        (("export", "--since", "soon"), "scrapy export: error: --since 'soon': give a duration"),
    ]:
        result = run(*args, db=db)
        assert result.returncode == 2, args
        assert one_line(result.stderr).startswith(message), result.stderr


def test_reprocess_and_export_refuse_a_site_without_articles(tmp_path):
    db = build_known_db(tmp_path / "news.db")
    for command in ("reprocess", "export"):
        result = run(command, "--site", "nosuch", db=db)
        assert result.returncode == 2
        assert one_line(result.stderr) == (
            f"scrapy {command}: error: --site 'nosuch': no stored articles of that site in "
            f"{db} (sites: herald, seoul-daily)"
        )


def test_list_shows_generic_spiders_then_sites_in_file_order(tmp_path):
    sites_file = write_sites(
        tmp_path / "sites.toml",
        zeta=feed("https://zeta.example/feed.xml"),
        alpha=feed("https://alpha.example/feed.xml"),
        off=feed("https://off.example/feed.xml", enabled=False),
    )
    listed = run("list", "-s", f"SITES_FILE={sites_file}")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split() == ["feed", "sitemap", "listing", "aggregator", "zeta", "alpha"]


# -- exit codes and causes ----------------------------------------------------------------------
def test_crawl_whose_source_failed_exits_1_with_the_cause(sites, db):
    missing = sites.base_urls["pub"] + "/no-such-feed.rss"
    result = run("crawl", "feed", "-a", f"url={missing}", "-s", "LOG_ENABLED=False", db=db)
    assert result.returncode == 1
    host = missing.split("/")[2].replace(":", "-")
    assert one_line(result.stderr) == (
        f"crawl: {host} failed: 1 error logged: source {missing} failed (http_404): "
        "Ignoring non-200 response"
    )
    refused = f"http://127.0.0.1:{closed_port()}/feed.xml"
    result = run(
        "crawl", "feed", "-a", f"url={refused}", "-a", "name=gone", "-s", "LOG_ENABLED=False",
        "-s", "RETRY_TIMES=0", db=db,
    )  # fmt: skip
    assert result.returncode == 1
    assert f"source {refused} failed (refused)" in one_line(result.stderr)
    ok = run("crawl", "feed", "-a", f"url={sites.base_urls['pub']}/feed.rss", db=db)
    assert ok.returncode == 0, ok.stderr[-2000:]


def test_failure_summary_report_and_runs_give_the_same_count_and_cause(sites, db, tmp_path):
    refused = f"http://127.0.0.1:{closed_port()}/feed.xml"
    missing = sites.base_urls["pub"] + "/no-such-feed.rss"
    sites_file = write_sites(
        tmp_path / "sites.toml",
        herald=feed(sites.base_urls["pub"] + "/feed.rss"),
        gone=feed(refused),
        moved=feed(missing),
    )
    result = run("crawlall", "--sites", sites_file, db=db)
    assert result.returncode == 1
    runs = {r["site"]: r for r in rows(db, "SELECT * FROM runs")}
    table = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line}
    gone = runs["gone"]
    problem = json.loads(gone["problems"])[0]
    logged = json.loads(gone["stats"])["log_count/ERROR"]
    downloads = gone["errors"] - logged
    assert downloads > 0  # connection refused: every attempt counts, retries included
    assert problem.startswith(
        f"{gone['errors']} errors ({logged} logged, {downloads} failed downloads): "
    )
    assert f"source {refused} failed (refused)" in problem
    assert table["gone"][-2] == str(gone["errors"])  # the summary's errors column
    assert f"FAILED gone: {problem}" in result.stdout
    moved = json.loads(runs["moved"]["problems"])
    assert moved == [
        f"1 error logged: source {missing} failed (http_404): Ignoring non-200 response"
    ]
    assert table["moved"][-2] == "1"
    report = run("report", db=db)
    assert f"  gone: {problem}" in report.stdout
    assert f"  moved: {moved[0]}" in report.stdout
    data = json.loads(run("report", "--json", db=db).stdout)
    gone_row = next(s for s in data["sites"] if s["site"] == "gone")
    assert (gone_row["errors"], gone_row["last_problems"]) == (gone["errors"], [problem])


def test_localhost_feed_linking_to_127_0_0_1_says_why_nothing_was_stored(sites, db):
    url = sites.base_urls["pub"].replace("127.0.0.1", "localhost") + "/feed.rss"
    result = run("crawl", "feed", "-a", f"url={url}", "-s", "LOG_ENABLED=False", db=db)
    assert result.returncode == 0
    line = one_line(result.stderr)
    assert line.startswith("crawl: localhost-")
    assert "nothing stored: 4 article downloads failed (ssrf_loopback 4)" in line
    assert "SSRF_ALLOWED_HOSTS" in line


# -- progress: only in a terminal ---------------------------------------------------------------
def test_crawlall_shows_progress_in_a_terminal_only(sites, db, tmp_path, hang):
    sites_file = write_sites(
        tmp_path / "sites.toml",
        herald=feed(sites.base_urls["pub"] + "/feed.rss"),
        hung=feed(hang + "/feed.rss"),
    )
    args = ("crawlall", "--sites", sites_file, "-s", "CRAWLALL_SITE_TIMEOUT=3",
            "-s", "DOWNLOAD_TIMEOUT=5", "-s", "PROGRESS_INTERVAL=0.5")  # fmt: skip
    result = run(*args, db=db, stderr_tty=True)
    assert result.returncode == 1
    ticks = re.findall(
        r"^\[crawlall (\d)/2 done\] \d:\d\d  pages \d+ ", result.stderr, re.MULTILINE
    )
    assert len(ticks) >= 3, result.stderr
    assert re.search(
        r"^\[herald\] \d:\d\d  pages 6 .* stored 4 .*  finished$", result.stderr, re.MULTILINE
    )
    assert re.search(r"^\[hung\] .*  closespider_timeout !$", result.stderr, re.MULTILINE)
    assert "FAILED hung: closed: site time limit reached" in result.stdout  # cron's mail
    # Not a terminal: nothing on stderr (cron mails stdout and stderr).
    quiet = run(*args, db=db)
    assert quiet.returncode == 1
    assert quiet.stderr == ""


def test_progress_and_summary_name_the_site_and_what_was_already_stored(sites, db):
    url = sites.base_urls["pub"] + "/feed.rss"
    args = ("crawl", "feed", "-a", f"url={url}", "-a", "name=local", "-s", "PROGRESS_FORCE=True",
            "-s", "LOG_ENABLED=False")  # fmt: skip
    first = run(*args, db=db)
    assert first.returncode == 0, first.stderr
    assert re.search(r"^local +finished +\d+ +4 +0 ", first.stderr, re.MULTILINE), first.stderr
    assert "1 site, 4 articles stored, 0 duplicates" in first.stderr
    second = run(*args, db=db)
    assert re.search(r"^local +finished +\d+ +0 +4 ", second.stderr, re.MULTILINE), second.stderr
    assert "1 site, 0 new articles stored, 4 already stored (not fetched again)" in second.stderr


# -- exports ------------------------------------------------------------------------------------
def test_export_after_a_crawl_whose_output_skipped_stored_articles(sites, db, tmp_path):
    url = sites.base_urls["pub"] + "/feed.rss"
    first = tmp_path / "first.jsonl"
    assert run("crawl", "feed", "-a", f"url={url}", "-O", str(first), db=db).returncode == 0
    second = tmp_path / "second.jsonl"
    again = run("crawl", "feed", "-a", f"url={url}", "-O", str(second), "-s",
                "LOG_ENABLED=False", db=db)  # fmt: skip
    assert again.returncode == 0
    assert second.read_text() == ""
    assert one_line(again.stderr) == (
        f"crawl: 4 articles already stored in {db} were not fetched again, so they are not in "
        f"{second}; all stored articles: scrapy export -O FILE (see scrapy export -h)"
    )
    exported = tmp_path / "all.jsonl"
    result = run("export", "-O", str(exported), db=db)
    assert result.returncode == 0, result.stderr
    assert result.stdout == result.stderr == ""
    crawled = {r["url"]: r for r in map(json.loads, first.read_text().splitlines())}
    stored = {r["url"]: r for r in map(json.loads, exported.read_text().splitlines())}
    assert set(stored) == set(crawled)
    for url_, row in stored.items():
        for key in ("title", "text", "published_at", "tags", "is_korea", "authors"):
            assert row[key] == crawled[url_][key], key


# -- pipes, signals ---------------------------------------------------------------------------
def test_report_into_a_closed_pipe_ends_quietly(tmp_path):
    db = tmp_path / "news.db"
    archive = SqliteArticles.acquire(db)
    try:
        for n in range(1500):
            archive.insert({
                "url": f"https://k.example/{n}.html", "site": "k", "title": f"Korea story {n}",
                "text": BODY, "tags": ["korea"], "is_korea": True, "korea_score": 9.0,
                "fetched_at": "2026-11-27T02:00:00+00:00",
            })  # fmt: skip
    finally:
        archive.release()
    cmd = (f"set -o pipefail; {sys.executable} -m scrapy report --since 2026-11-01 --json "
           f"--limit 1500 -s DB_PATH={db} | head -c 100 >/dev/null")  # fmt: skip
    result = subprocess.run(
        ["bash", "-c", cmd], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_datasette_stopped_with_sigterm_stops_its_server_and_cleans_up(tmp_path):
    pytest.importorskip("datasette")
    db = build_known_db(tmp_path / "news.db")
    port = closed_port()
    temp = tmp_path / "tmp"
    temp.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "scrapy", "datasette", "--port", str(port), "-s", f"DB_PATH={db}"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "TMPDIR": str(temp)},
    )
    try:
        deadline = time.monotonic() + 60
        while not listening(port):
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "datasette did not start"
            time.sleep(0.2)
        assert list(temp.iterdir())  # the metadata folder
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    time.sleep(0.5)
    assert not listening(port)  # the server is gone too
    assert list(temp.iterdir()) == []


# -- what a user is told to type ----------------------------------------------------------------
def test_demo_next_commands_work_as_printed(tmp_path):
    db = tmp_path / "demo.db"
    env = {**os.environ, "PATH": "/usr/bin:/bin"}  # the virtualenv not activated
    demo = scrapy("demo", "--port", "0", db=db, env=env)
    assert demo.returncode == 0, demo.stderr[-2000:]
    lines = demo.stdout.split("Next (commands as you can type them here):\n")[1].splitlines()
    commands = [line.split("#")[0].strip() for line in lines if line.startswith("  ")]
    assert len(commands) == 3
    assert shutil.which("sqlite-utils", path=env["PATH"]) is None
    for command in commands[:2]:
        done = subprocess.run(
            command, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, (command, done.stderr)
        assert done.stdout
    assert (ROOT / commands[2].split()[0]).is_file()  # scrapy datasette (serves until stopped)


def test_documented_sqlite_utils_commands_run_as_written(tmp_path):
    doc = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", doc, re.DOTALL)
    commands = []
    for block in blocks:
        for command in re.split(r"\n(?=\S)", block.strip()):
            if "sqlite-utils" in command or "datasette " in command:
                assert command.startswith((".venv/bin/", "make ", "#")), command
            if command.startswith(".venv/bin/sqlite-utils"):
                commands.append(command)
    assert len(commands) >= 4
    work = tmp_path / "checkout"
    (work / "data").mkdir(parents=True)
    (work / ".venv").symlink_to(ROOT / ".venv")
    build_known_db(work / "data" / "news.db")
    env = {**os.environ, "PATH": "/usr/bin:/bin"}
    for command in commands:
        done = subprocess.run(
            command, shell=True, cwd=work, env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, (command, done.stderr)


# -- politeness -------------------------------------------------------------------------------
def test_placeholder_user_agent_is_flagged_for_public_sites_only(sites, db, tmp_path):
    public = run(
        "crawl", "feed", "-a", "url=https://news.example.com/feed.xml", "-s", "RETRY_TIMES=0",
        "-s", "LOG_LEVEL=WARNING", db=db,
    )  # fmt: skip
    assert "USER_AGENT still has the placeholder contact" in public.stderr
    assert "crawler/settings.py" in public.stderr
    local = run("crawl", "feed", "-a", f"url={sites.base_urls['pub']}/feed.rss",
                "-s", "LOG_LEVEL=WARNING", db=db)  # fmt: skip
    assert "USER_AGENT" not in local.stderr
    own = run(
        "crawl", "feed", "-a", "url=https://news.example.com/feed.xml", "-s", "RETRY_TIMES=0",
        "-s", "LOG_LEVEL=WARNING", "-s", "USER_AGENT=acme-news/1 (+https://acme.test; ops@acme.test)",
        db=db,
    )  # fmt: skip
    assert "USER_AGENT" not in own.stderr
    crontab = run("crontab", db=db)
    assert crontab.stdout.startswith("# FIRST: USER_AGENT still has the placeholder contact")
