# Console messages for a person at a serial terminal: one line, what happened and what comes next.
# Never pass a secret in: nothing here can tell one from any other string.
import sys


def log(tag, msg):
    print(tag + ": " + msg)


def why(e):
    # An exception as the console names it: its message, or its class when it has none.
    return str(e) or e.__class__.__name__


def reading(msg, kept):
    # One line per reading (config console_readings), written from the encoder's buffer as it
    # is: no string is built, so the line costs the loop no heap.
    write = sys.stdout.write
    write("reading: ")
    write(msg)
    write(" (kept in the outbox until the broker is back)\n" if kept else "\n")
