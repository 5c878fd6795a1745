def get_account(ctx, account_id):
    return ctx.db.accounts[account_id]
