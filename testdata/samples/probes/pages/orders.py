"""POST /api/orders: an operation of the OpenAPI document, taking a JSON body."""


def create(body):
    """Returns the order made, or None when the body is not an order (an item name, a quantity of 1 or
    more)."""
    if not isinstance(body, dict):
        return None
    item, quantity = body.get("item"), body.get("quantity")
    if not isinstance(item, str) or not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
        return None
    return {"item": item, "quantity": quantity, "status": "placed"}
