# Console messages for a person at a serial terminal: one line, what happened and what comes next.
# Never pass a secret in: nothing here can tell one from any other string.
import sys


def log(tag, msg):
    print(tag + ": " + msg)


def why(e):
    # An exception as the console names it: its message, or its class when it has none.
    return str(e) or e.__class__.__name__


# 1 while a reading's console line is half written: a Ctrl-C can land between its pieces.
_open = bytearray(1)


def end_line():
    # Finishes a reading's line that a Ctrl-C cut short, so the next message starts a line.
    if _open[0]:
        _open[0] = 0
        sys.stdout.write("\n")


def reading_echo(encoder):
    # The console line per reading (config console_readings). The encoder was made with
    # b"reading: " as its head (firmware/wiring.py): a reading sent is the start of its buffer,
    # head, message and newline, and goes out in one write, building no string or view.
    # sys.stdout.write is looked up once, here: a lookup per line would allocate a bound method.
    write = sys.stdout.write

    def echo(msg, kept):
        _open[0] = 1
        if kept:
            write("reading: ")
            write(msg)
            write(" (kept in the outbox until the broker is back)\n")
        else:
            # A MicroPython stream's write(buf, max_len); the stubs know only write(s).
            write(encoder.buf, encoder.head + len(msg) + 1)  # pyright: ignore[reportCallIssue]
        _open[0] = 0

    return echo
