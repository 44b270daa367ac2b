# Console messages for a person at a serial terminal: one line, what happened and what comes next.
# Never pass a secret in: nothing here can tell one from any other string.


def log(tag, msg):
    print(tag + ": " + msg)


def why(e):
    # An exception as the console names it: its message, or its class when it has none.
    return str(e) or e.__class__.__name__
