"""/archive: listed in sitemap.xml only, which robots.txt names (reached by a crawl)."""


def render():
    return "<!doctype html><title>archive</title><p>the archive of old catalogs</p>"
