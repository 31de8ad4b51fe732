"""The two tools of the support-assistant example: look an order up, open a return.

Plain functions: their docstrings and type hints are what the model is shown (the schema
``transformers.utils.get_json_schema`` builds). The data is a small in-memory shop.
"""

from __future__ import annotations

ORDERS = {
    "A1001": {"item": "blender", "status": "delivered", "delivered_days_ago": 3, "price": 49.0},
    "A1002": {"item": "rain jacket", "status": "in transit", "delivered_days_ago": None, "price": 89.0},
    "A1003": {"item": "desk lamp", "status": "delivered", "delivered_days_ago": 45, "price": 25.0},
}

RETURN_WINDOW_DAYS = 30
RETURNS: list[dict] = []
"""Returns opened during a run (a real suite would point the tool at a test double of its service)."""


def lookup_order(order_id: str) -> dict:
    """Look up an order: its item, its status, and how many days ago it was delivered.

    Args:
        order_id: the order number, such as "A1001"
    """
    order = ORDERS.get(order_id.strip().upper())
    if order is None:
        return {"error": f"no order {order_id}"}
    return {"order_id": order_id.strip().upper(), **order}


def open_return(order_id: str, reason: str) -> str:
    """Open a return for a delivered order, within 30 days of delivery.

    Args:
        order_id: the order number, such as "A1001"
        reason: why the customer returns the item, in a few words
    """
    order = ORDERS.get(order_id.strip().upper())
    if order is None:
        return f"no order {order_id}"
    if order["status"] != "delivered":
        return f"order {order_id} is not delivered yet; it cannot be returned"
    if order["delivered_days_ago"] > RETURN_WINDOW_DAYS:
        return f"order {order_id} was delivered {order['delivered_days_ago']} days ago, past the {RETURN_WINDOW_DAYS}-day window"
    RETURNS.append({"order_id": order_id, "reason": reason})
    # The answer depends on this call alone (not on how many returns other cases opened), so each
    # case's transcript is the same whatever runs beside it.
    return f"return R-{order_id.strip().upper()} opened for order {order_id}; a prepaid label is on its way"
