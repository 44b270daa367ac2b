# Capped exponential backoff with full jitter: the n-th wait is random in [cap/2, cap] of
# min(base * 2**n, cap), so a fleet that lost its broker together does not return together.


class Backoff:
    def __init__(self, base_ms, cap_ms, randbits):
        self.base_ms = base_ms
        self.cap_ms = cap_ms
        self.randbits = randbits  # random.getrandbits on the board; injected for tests
        self.failures = 0

    def next_ms(self):
        # The wait before the next attempt; each call counts one more failure.
        ceiling = self.base_ms << min(self.failures, 20)
        if ceiling > self.cap_ms:
            ceiling = self.cap_ms
        self.failures += 1
        half = ceiling // 2
        return half + self.randbits(16) * (ceiling - half) // 0xFFFF

    def reset(self):
        self.failures = 0
