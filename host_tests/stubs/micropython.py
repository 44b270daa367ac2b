"""CPython stand-in for the micropython module: const() is the identity."""


def const(value):
    return value
