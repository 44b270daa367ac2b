# Capped exponential backoff with full jitter: the n-th wait is random in [cap/2, cap] of
# min(base * 2**n, cap), so a fleet that lost its broker together does not return together.
# A function, not an object: its owners (the session, Wi-Fi) keep a policy and a count of
# failures, and only their failure paths load this module, dropping it after.


def next_wait(owner):
    # The wait before owner's next attempt, counting one more failure. owner.backoff is the
    # policy (base_ms, cap_ms, randbits: random.getrandbits on the board, injected for tests);
    # owner.failures, the failures so far (its owner sets it back to 0 after a success).
    base_ms, cap_ms, randbits = owner.backoff
    ceiling = base_ms << min(owner.failures, 20)
    if ceiling > cap_ms:
        ceiling = cap_ms
    owner.failures += 1
    half = ceiling // 2
    return half + randbits(16) * (ceiling - half) // 0xFFFF
