def build(seed):
    return {"users": {}}
