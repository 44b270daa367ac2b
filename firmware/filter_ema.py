# The exponential-moving-average filter (config: {"type": "ema", "alpha": a}). Loaded only when a
# sensor uses it.


def make(spec):
    # spec: the validated filter dict (sensor_setup.make_filter)
    return Ema(spec["alpha"])


class Ema:
    # Exponential moving average: y += alpha * (x - y); the first value passes through.
    def __init__(self, alpha):
        if not 0 < alpha <= 1:
            raise ValueError("ema alpha must be in (0, 1], not %r" % (alpha,))
        self.alpha = alpha
        self._y = None

    def reset(self):
        self._y = None

    def update(self, x):
        y = self._y
        y = x if y is None else y + self.alpha * (x - y)
        self._y = y
        return y
