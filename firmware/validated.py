# The boot's configuration without config.py while nothing it depends on changed. config.py's
# checks intern ~150 names that stay on the heap for the board's lifetime; a board that boots
# again on the same files need not load it. What the last check returned is kept in
# validated.json with what it said on the console, said again word for word, so every boot's
# console tells the same story. Its key is a hash of config.json, secrets.json and every file
# of the firmware: an edit, a provision, the setup page, a `set` command, a flash or an update
# each change it, and the next boot checks again.
import json

from micropython import const

from firmware import atomic

PATH = "validated.json"
# Kept across the restart after a check: the reset cause the boot before it saw.
RESTARTED = "restarted"
_FILES = const(("config.json", "secrets.json"))
_CHUNK = const(256)


def _digest(path, buf):
    # The file's own hash (fixed length, so files cannot run into each other), or b"-".
    import hashlib

    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                h.update(buf if n == _CHUNK else buf[:n])
    except OSError:  # missing, or a folder
        return b"-"
    return h.digest()


def key():
    # The hash of the configuration files and the firmware's, as hex.
    import binascii
    import hashlib
    import os

    try:
        names = sorted(os.listdir("firmware"))
    except OSError:
        names = []
    h = hashlib.sha256()
    buf = bytearray(_CHUNK)
    for path in _FILES + tuple("firmware/" + n for n in names):
        h.update(path.encode())
        h.update(_digest(path, buf))
    return binascii.hexlify(h.digest()).decode()


def _kept(k):
    # What validated.json keeps for key k, or None.
    try:
        kept = json.loads(atomic.read(PATH))
        if kept["key"] == k:
            return kept
    except Exception:  # none yet, cut short, or unreadable
        pass
    return None


def load(log, check):
    # (config, secrets, problems, checked) with the first three as check(log) gives them
    # (config.load), from validated.json when its key still holds; else checks, keeping the
    # result for the next boot. checked: the checks ran now and the next boot on these files
    # will not run them (their result was kept and reads back).
    k = key()
    kept = _kept(k)
    if kept is not None:
        for tag, msg in kept["said"]:
            log(tag, msg)
        return kept["config"], kept["secrets"], kept["problems"], False
    said = []

    def note(tag, msg):
        said.append((tag, msg))
        log(tag, msg)

    cfg, secrets, problems = check(note)
    doc = {"key": k, "config": cfg, "secrets": secrets, "problems": problems, "said": said}
    try:
        atomic.write(PATH, json.dumps(doc).encode())
    except OSError:
        pass  # a full or failing flash: the next boot checks again
    doc = None  # its text and dicts are garbage before the file is read back
    return cfg, secrets, problems, _kept(k) is not None


def restarted(board):
    # True when this boot is the restart after a check (restart() below): the board's reset
    # cause becomes what the boot before it saw, and the mark is gone, so a second check (the
    # files changed again, or validated.json cannot be read) never restarts twice in a row.
    import os

    try:
        cause = atomic.read(RESTARTED).decode()
        os.remove(RESTARTED)
    except (OSError, ValueError):
        return False
    board.reset_cause = cause
    return True


def restart(board, log):
    # After a check whose result was kept: the boot starts over, so that the running node's heap
    # never held config.py (its names stay interned until a reset, and would cost a larger qstr
    # pool for the board's lifetime). Returns only when it must not restart: an update on trial
    # (otaboot.py would take the restart for a crash and roll back) or a flash that cannot keep
    # the reset cause.
    import os

    import machine

    try:
        os.stat("ota/state")  # otaboot.STATE: an update step is open
        return
    except OSError:
        pass
    try:
        atomic.write(RESTARTED, board.reset_cause.encode())
    except OSError:
        return
    log("boot", "configuration checked and kept; restarting once to run without the checks")
    machine.soft_reset()


def _checked(say):
    # config.py's checks, loaded only when there is no result for these files, and dropped
    # before the result is written and read back.
    from firmware import config

    found = config.load(say)
    del config
    from firmware.unload import drop

    drop("config")
    return found


def boot(board, log):
    # The boot's first line and its configuration: (config, secrets, problems, restart).
    # restart: this boot checked, so it starts over once what is built from the configuration
    # (the HA record, wiring.py) is kept too (restart()); never twice in a row.
    again = restarted(board)
    log(
        "boot",
        "sensornode %s on %s, reset cause: %s" % (board.version, board.name, board.reset_cause),
    )
    cfg, secrets, problems, checked = load(log, _checked)
    return cfg, secrets, problems, checked and not again
