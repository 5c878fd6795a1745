def _cache(ctx):
    pass


def _helper(ctx):
    pass


def get_user(ctx, uid, verbose, extra):
    return ctx.db.users[uid]


def find(ctx, user_id):
    pass


def recent(ctx, user_id, /):
    pass
