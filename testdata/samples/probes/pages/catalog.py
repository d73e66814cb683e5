"""/catalog: linked from / only (reached by a crawl)."""

ITEMS = ["widget", "gadget"]


def render():
    rows = "".join(f"<li>{name}</li>" for name in ITEMS)
    return f'<!doctype html><title>catalog</title><img src="/static/logo.svg" alt=""><ul>{rows}</ul>'
