# The board's REPL on its serial port (host-only, never flashed): the friendly REPL, the raw REPL
# and raw-paste mode byte for byte as MicroPython's shared/runtime/pyexec.c and
# shared/readline/readline.c speak them, which is what mpremote and pyboard.py expect.
#
# The port is this process's stdin and stdout, which the supervisor joins to a pty. stdin is
# non-blocking (the supervisor makes it so), so a read takes what has arrived and poll() waits.
# Ctrl-C: while code runs, the supervisor turns a 0x03 from the port into SIGINT (as a board's
# UART interrupt raises KeyboardInterrupt) and drops the byte; while the REPL reads, the byte comes
# through. The board says which is which (_vboard.tell("intr 1"/"intr 0")); a SIGINT that lands
# while the REPL reads anyway counts as the 0x03 it stands for.
import io
import os
import select
import sys

import _vboard

CTRL_A = 1  # friendly: raw REPL; raw: back to a fresh raw prompt (and, after Ctrl-E 'A', paste)
CTRL_B = 2  # friendly: banner again; raw: to the friendly REPL
CTRL_C = 3  # cancel the line (or, while code runs, KeyboardInterrupt)
CTRL_D = 4  # friendly, empty line: soft reset; raw: end of the code (no code: soft reset)
CTRL_E = 5  # friendly: paste mode; raw: starts the raw-paste request ("\x05A\x01")
PS1 = ">>> "
PS2 = "... "
RAW_PASTE_WINDOW = 128  # half of MICROPY_REPL_STDIN_BUFFER_MAX (256), as the ports send it
# What only the virtual board needs to know of each board (firmware/ident.py has the board
# table): the machine half of the REPL banner (MICROPY_HW_BOARD_NAME " with " MICROPY_HW_MCU_NAME).
_MACHINES = {"esp32": "Generic ESP32 module with ESP32", "picow": "Raspberry Pi Pico W with RP2040"}
_hidden = [__file__]  # files whose traceback lines are the board's own, not the user's


class Port:
    def __init__(self):
        self._in = sys.stdin.buffer
        self._out = sys.stdout.buffer
        self._poll = select.poll()
        self._poll.register(sys.stdin, select.POLLIN)
        self._buf = b""
        self._pos = 0

    def getc(self):
        # The next byte from the port; None when the port is gone (the supervisor closed it).
        while self._pos >= len(self._buf):
            try:
                self._poll.poll(-1)
                data = self._in.read(256)
            except KeyboardInterrupt:
                return CTRL_C
            if data is None:
                continue  # woken, but nothing there yet
            if not data:
                return None
            self._buf = data
            self._pos = 0
        c = self._buf[self._pos]
        self._pos += 1
        return c

    def write(self, data):
        self._out.write(data)


def banner(port):
    # "MicroPython <version> on <date>; <board> with <mcu>", the runtime's own version and date.
    version = sys.version.split("; ", 1)[-1]
    port.write(("%s; %s\r\n" % (version, _MACHINES[os.getenv("VBOARD_BOARD") or "esp32"])).encode())
    port.write(b'Type "help()" for more information.\r\n')


def main(g):
    # The board's start with its serial port (called by _launch.main): boot.py, then main.py
    # (not after a soft reset into the raw REPL), with Ctrl-C on the port interrupting them,
    # then the REPL; a soft reset from it starts the board again.
    import _launch

    _hidden.append(_launch.__file__)  # the launcher's frames are not the user's either
    mode = os.getenv("VBOARD_REPL") or "friendly"  # the REPL mode the start is in
    _vboard.tell("intr 1")
    _launch.run_file("boot.py", g, mode)
    if mode == "friendly":
        _launch.run_file("main.py", g, mode)
    mode = run(g, mode)
    if mode is not None:
        _launch.soft_reboot(mode)


def print_exception(e):
    # The traceback as a board prints it: without the frames of this module and the launcher.
    buf = io.StringIO()
    sys.print_exception(e, buf)
    for line in buf.getvalue().split("\n"):
        if line and not any(line.startswith('  File "%s"' % f) for f in _hidden):
            print(line)


def execute(port, g, source, kind, eof):
    # Runs source (bytes) in the board's globals. kind: "exec" (raw REPL, paste mode) or "single"
    # (a friendly REPL line: expressions print their value). eof: the raw REPL's two 0x04 markers,
    # after the output and after the error output. Returns True for a soft reset (SystemExit);
    # machine.reset() (SystemExit with the reset exit code) goes on up and ends the process.
    _vboard.tell("intr 1")
    try:
        exec(compile(source.decode(), "<stdin>", kind), g)
        error = None
    except SystemExit as e:
        if e.args and e.args[0] == _vboard.RESET_EXIT:
            raise
        error = e
    except BaseException as e:  # KeyboardInterrupt too (and a UnicodeError in the source)
        error = e
    _vboard.tell("intr 0")
    if eof:
        port.write(b"\x04")
    soft = isinstance(error, SystemExit)
    if error is not None and not soft:
        print_exception(error)
    if eof:
        port.write(b"\x04")
    return soft


# -- the raw REPL -------------------------------------------------------------------------------


def raw_paste(port, g, command):
    # After ">" and "\x05" <command> "\x01": "R\x01", the window size and a first window credit;
    # the host sends at most a window before the next "\x01"; Ctrl-D ends (acknowledged with
    # 0x04), Ctrl-C ends with KeyboardInterrupt. Then the code runs as in the raw REPL.
    if command != ord("A"):
        port.write(b"R\x00")  # a raw-paste command this board does not know
        return False
    port.write(b"R\x01" + bytes((RAW_PASTE_WINDOW & 0xFF, RAW_PASTE_WINDOW >> 8, 1)))
    source = bytearray()
    remain = RAW_PASTE_WINDOW
    while True:
        c = port.getc()
        if c is None:
            return None
        if c in (CTRL_C, CTRL_D):
            port.write(b"\x04")  # the end, seen
            break
        source.append(c)
        remain -= 1
        if remain == 0:
            port.write(b"\x01")  # room for another window
            remain = RAW_PASTE_WINDOW
    if c == CTRL_C:
        port.write(b"\x04")
        print_exception(KeyboardInterrupt())
        port.write(b"\x04")
        return False
    return execute(port, g, source, "exec", True)


def raw(port, g):
    # pyexec_raw_repl(). Returns the next mode: "friendly", or ("soft", mode) for a soft reset,
    # or None when the port is gone.
    port.write(b"raw REPL; CTRL-B to exit\r\n")
    while True:
        port.write(b">")
        line = bytearray()
        while True:
            c = port.getc()
            if c is None:
                return None
            if c == CTRL_A:
                if len(line) == 2 and line[0] == CTRL_E:
                    soft = raw_paste(port, g, line[1])
                    if soft is None:
                        return None
                    if soft:
                        return ("soft", "raw")
                    line = bytearray()
                    port.write(b">")
                    continue
                port.write(b"raw REPL; CTRL-B to exit\r\n>")
                line = bytearray()
            elif c == CTRL_B:
                port.write(b"\r\n")
                return "friendly"
            elif c == CTRL_C:
                line = bytearray()
            elif c == CTRL_D:
                break
            else:
                line.append(c)
        port.write(b"OK")
        if not line:
            port.write(b"\r\n")
            return ("soft", "raw")
        if execute(port, g, line, "exec", True):
            return ("soft", "raw")


# -- the friendly REPL --------------------------------------------------------------------------


def continue_with_input(text):
    # py/repl.c mp_repl_continue_with_input(): does the statement need another line?
    if not text:
        return False
    compound = text[0] == "@"
    for word in ("if", "while", "for", "try", "with", "def", "class", "async"):
        if text.startswith(word):
            after = text[len(word) : len(word) + 1]
            if not after or not (after.isalpha() or after.isdigit() or after == "_"):
                compound = True
    depth = 0
    quote = None  # None, "'", '"', "'''" or '"""'
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch in "'\"":
            triple = text[i : i + 3] == ch * 3
            if triple and (quote is None or quote == ch * 3):
                quote = None if quote else ch * 3
                i += 2
            elif quote is None or quote == ch:
                quote = None if quote else ch
        elif ch == "\\" and i + 1 < n and text[i + 1] in "'\"\\":
            if quote is not None:
                i += 1
        elif quote is None:
            if ch in "([{":
                depth += 1
            elif ch in ")]}":
                depth -= 1
        i += 1
    if quote is not None and len(quote) == 3:
        return True
    if depth > 0 and quote is None:
        return True
    if text[-1] == "\\":
        return True
    return compound and text[-1] != "\n"


def auto_indent(text):
    # readline_auto_indent(): the indent for the next line of a compound statement.
    if len(text) < 2 or text[-1] != "\n":
        return ""
    start = text.rfind("\n", 0, len(text) - 1) + 1
    first = start
    while first < len(text) and text[first] == " ":
        first += 1
    if start > 0 and first + 1 == len(text):
        # the previous line is all spaces: no indent when the one before it is too
        before = text.rfind("\n", 0, start - 1) + 1
        if not text[before : start - 1].strip(" "):
            return ""
    n = (first - start) // 4
    if text[-2] == ":":
        n += 1
    return "    " * n


def readline(port, text, prompt):
    # readline(): one line appended to text (the statement so far), echoed as typed. Returns
    # (text, key): key 0 for Enter, or the control key that ended it (Ctrl-A..E on an empty
    # line, Ctrl-C anywhere), or None when the port is gone. No cursor movement or history.
    port.write(prompt.encode())
    orig = len(text)
    indent = auto_indent(text)
    just_indented = bool(indent)
    if indent:
        text += indent
        port.write(indent.encode())
    escape = 0  # 0 none, 1 after ESC, 2 inside "ESC [" or "ESC O"
    utf8 = bytearray()  # the bytes of a character typed outside ASCII, until it is whole
    while True:
        c = port.getc()
        if c is None:
            return text, None
        if c >= 0x80 and not escape:
            utf8.append(c)
            port.write(bytes((c,)))
            try:
                text += bytes(utf8).decode()
                utf8 = bytearray()
            except UnicodeError:
                if len(utf8) >= 4:
                    utf8 = bytearray()  # not UTF-8: dropped
            continue
        if escape == 1:
            escape = 2 if c in (0x5B, 0x4F) else 0
            continue
        if escape == 2:
            if not (0x30 <= c <= 0x39 or c == 0x3B):
                escape = 0
            continue
        if CTRL_A <= c <= CTRL_E and len(text) == orig:
            return text, c
        if c == CTRL_C:
            return text, c
        if c == 13:
            port.write(b"\r\n")
            return text, 0
        if c == 27:
            escape = 1
        elif c == 8 or c == 127:
            if len(text) > orig:
                typed = text[orig:]
                n = 4 if len(typed) >= 4 and not typed.strip(" ") else 1
                text = text[:-n]
                port.write(b"\b" * n + b"\x1b[K")
        elif just_indented and c in (9, 32):
            if c == 32:  # a space after the auto-indent takes back 3 of its spaces
                text = text[:-3]
                port.write(b"\b\b\b\x1b[K")
        elif c == 9:
            if len(text) > orig and text[-1] in " \n":
                text += "    "
                port.write(b"    ")
        elif 32 <= c <= 126:
            text += chr(c)
            port.write(bytes((c,)))
        just_indented = False


def paste(port):
    # Ctrl-E: every byte taken as is until Ctrl-D (run) or Ctrl-C (cancel).
    port.write(b"\r\npaste mode; Ctrl-C to cancel, Ctrl-D to finish\r\n=== ")
    source = bytearray()
    while True:
        c = port.getc()
        if c is None or c == CTRL_C:
            port.write(b"\r\n")
            return None
        if c == CTRL_D:
            port.write(b"\r\n")
            return source
        source.append(c)
        port.write(b"\r\n=== " if c == 13 else bytes((c,)))


def friendly(port, g):
    # pyexec_friendly_repl(). Returns "raw", ("soft", "friendly") or None when the port is gone.
    banner(port)
    while True:
        text, key = readline(port, "", PS1)
        kind = "single"
        if key is None:
            return None
        if key == CTRL_A:
            port.write(b"\r\n")
            return "raw"
        if key == CTRL_B:
            port.write(b"\r\n")
            banner(port)
            continue
        if key == CTRL_C:
            port.write(b"\r\n")
            continue
        if key == CTRL_D:
            port.write(b"\r\n")
            return ("soft", "friendly")
        if key == CTRL_E:
            source = paste(port)
            if source is None:
                continue
            kind = "exec"
        elif not text:
            continue
        else:
            cancelled = False
            while continue_with_input(text):
                text, key = readline(port, text + "\n", PS2)
                if key is None:
                    return None
                if key == CTRL_C:
                    port.write(b"\r\n")
                    cancelled = True
                    break
                if key == CTRL_D:
                    break
            if cancelled:
                continue
            source = text.encode()
        if execute(port, g, source, kind, False):
            return ("soft", "friendly")


def run(g, mode):
    # The REPL stage after boot.py/main.py, in mode ("friendly" or "raw"), until a soft reset.
    # Returns the mode to soft-reset into, or None when the port is gone.
    port = Port()
    while True:
        _vboard.tell("intr 0")
        try:
            step = raw(port, g) if mode == "raw" else friendly(port, g)
        except KeyboardInterrupt:
            # A Ctrl-C that raced the end of a command: the command is over; start afresh.
            port.write(b"\r\n")
            continue
        if step is None:
            return None
        if isinstance(step, tuple):
            return step[1]
        mode = step
