def cancel_order(ctx, order_id, order):
    return order_id


def set_status(ctx, order_id, status):
    return None
