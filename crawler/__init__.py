"""newscrawler: Scrapy spiders, article extraction, commands and the SQLite archive."""
