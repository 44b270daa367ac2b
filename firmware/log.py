# Console messages for a person at a serial terminal: one line, what happened and what comes next.
# Never pass a secret in: nothing here can tell one from any other string.


def log(tag, msg):
    print(tag + ": " + msg)
