"""GET /api/search?q=: an operation of the OpenAPI document, with a required query parameter."""

WORDS = ["widget", "gadget", "gizmo"]


def find(q):
    return [w for w in WORDS if q.lower() in w]
