"""The generic spiders, one per kind of source; each configured site subclasses one."""
