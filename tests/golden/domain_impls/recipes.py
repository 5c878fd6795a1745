def seed(rng, world):
    return {}


def task(rng, world, seed, plan):
    return {}
