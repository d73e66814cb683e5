"""GET /api/items/{id}: an operation of the OpenAPI document."""


def get(item_id):
    return {"id": item_id, "name": f"item {item_id}"}
