"""Scrapy commands of the news crawler (the module name is the command name)."""
