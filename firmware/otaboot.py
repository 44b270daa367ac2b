# The firmware switch and its trial, run by boot.py before anything else (and by main.py if
# boot.py could not). Every step is journaled in ota/state, which is only ever replaced whole by
# a rename, so a power cut at any instant leaves a step that the next boot repeats or finishes:
#
#   ready     a verified update waits in ota/new: copy the running files to ota/old, then
#   switch    move ota/new's files into place one rename at a time (repeatable: a moved file is
#             no longer in ota/new), remove modules the new version does not have, then
#   trial N   the new firmware runs; a second boot that finds the trial still open means it
#             crashed, hung (the trial watchdog) or never came online with readings, so
#   rollback  moves ota/old's files back (repeatable the same way) and says why in ota/result.
#   (no file) nothing to do; commit() removes the state once the trial went well.
#
# Only `except Exception` here: on the virtual board a power cut can be a SystemExit.
import os

from micropython import const

from firmware import atomic

DIR = "ota"
NEW = "ota/new"
OLD = "ota/old"
STATE = "ota/state"
RESULT = "ota/result"
WHY = "ota/why"
MANIFEST = "ota/new/0"
OLD_LIST = "ota/old/list"
_DEFAULT_TRIAL_S = const(60)
_RP2_WDT_MAX_MS = const(8000)
_COPY = const(512)


def _read(path):
    try:
        return atomic.read(path).decode()
    except (OSError, ValueError):
        return None


def state():
    # ["trial", "1", "60"], or [] when there is nothing to do.
    text = _read(STATE)
    return text.split() if text else []


def _set(*words):
    atomic.write(STATE, " ".join([str(w) for w in words]).encode())


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _mkdirs(path):
    # Every folder above path.
    parts = path.split("/")[:-1]
    for i in range(len(parts)):
        try:
            os.mkdir("/".join(parts[: i + 1]))
        except OSError:
            pass


def _is_dir(path):
    return os.stat(path)[0] & 0x4000 != 0


def _rmtree(path):
    try:
        names = os.listdir(path)
    except OSError:
        return
    for name in names:
        child = path + "/" + name
        if _is_dir(child):
            _rmtree(child)
        else:
            os.remove(child)
    os.rmdir(path)


def running_files():
    # What makes up the firmware now: boot.py, main.py and everything in firmware/.
    out = [p for p in ("boot.py", "main.py") if _exists(p)]
    try:
        names = os.listdir("firmware")
    except OSError:
        names = ()
    for name in names:
        if not _is_dir("firmware/" + name):
            out.append("firmware/" + name)
    return out


def manifest():
    # (fields, files) of the staged manifest: fields {"version": ..}, files [(sha, size, path)].
    fields = {}
    files = []
    with open(MANIFEST) as f:
        while True:
            line = f.readline()
            if not line:
                break
            words = line.split()
            if len(words) == 3 and len(words[0]) == 64:
                files.append((words[0], int(words[1]), words[2]))
            elif len(words) == 2:
                fields[words[0]] = words[1]
    return fields, files


def _copy(src, dst):
    _mkdirs(dst)
    buf = bytearray(_COPY)
    with open(src, "rb") as fin, open(dst + ".tmp", "wb") as fout:
        while True:
            n = fin.readinto(buf)
            if not n:
                break
            fout.write(buf if n == _COPY else memoryview(buf)[:n])
    atomic.replace(dst + ".tmp", dst)


def _backup():
    # A copy of the running firmware in ota/old; its list is written last, so a list means a
    # complete copy.
    _rmtree(OLD)
    names = running_files()
    for path in names:
        _copy(path, OLD + "/" + path)
    atomic.write(OLD_LIST, "\n".join(names).encode())


def _prune(keep):
    # Removes modules in firmware/ that the version being put in place does not have: a stale
    # x.py would be imported before the new x.mpy.
    for path in running_files():
        if path.startswith("firmware/") and path not in keep:
            os.remove(path)


def _forward(log):
    fields, files = manifest()
    keep = []
    for i in range(len(files)):
        path = files[i][2]
        keep.append(path)
        staged = NEW + "/" + str(i + 1)
        if _exists(staged):
            _mkdirs(path)
            atomic.replace(staged, path)
    _prune(keep)
    trial = fields.get("trial", _DEFAULT_TRIAL_S)
    _set("trial", 0, trial, fields.get("version", "?"))
    log("update", "switched to %s; on trial for %s s" % (fields.get("version", "?"), trial))


def _back(log, why):
    names = _read(OLD_LIST)
    names = names.split("\n") if names else []
    for path in names:
        saved = OLD + "/" + path
        if _exists(saved):
            _mkdirs(path)
            atomic.replace(saved, path)
    _prune(names)
    atomic.write(RESULT, ("fail " + why).encode())
    _cleanup()
    log("update", "previous firmware restored: " + why)


def _cleanup():
    # The journal goes first: once it is gone, nothing below is needed by a recovery.
    for path in (STATE, WHY):
        try:
            os.remove(path)
        except OSError:
            pass
    _rmtree(OLD)
    _rmtree(NEW)


def _trial_failed(version, cause):
    why = _read(WHY)
    if why:
        return "%s failed on trial: %s" % (version, why)
    if cause == "watchdog":
        return "%s hung on trial (watchdog reset)" % version
    return "%s did not come online with readings on trial (reset: %s)" % (version, cause)


def boot(log, cause):
    # Finishes whatever step a reset interrupted. Returns the trial's seconds when this boot
    # runs new firmware on trial, else None.
    st = state()
    if not st:
        return None
    if st[0] == "ready":
        log("update", "verified update waiting; keeping a copy of the running firmware")
        _backup()
        _set("switch")
        st = ["switch"]
    if st[0] == "switch":
        _forward(log)
        st = state()
    if st[0] == "trial":
        if st[1] != "0":
            _set("rollback", _trial_failed(st[3], cause))
            st = state()
        else:
            _set("trial", 1, st[2], st[3])
            return int(st[2])
    if st[0] == "rollback":
        _back(log, " ".join(st[1:]))
        return None
    return None


def note(why):
    # The crash handler's reason, kept for the rollback's message when a trial is on.
    st = state()
    if st and st[0] == "trial":
        atomic.write(WHY, why[:120].encode())


def commit(log):
    # The trial went well: the new firmware is permanent. Returns what to say, if anything.
    st = state()
    if not st or st[0] != "trial":
        return None
    _cleanup()
    detail = "%s passed its trial: it is permanent" % st[3]
    log("update", detail)
    return detail


def result():
    # (ok, detail) of the last update, said once at the next connect; None when there is none.
    text = _read(RESULT)
    if not text:
        return None
    try:
        os.remove(RESULT)
    except OSError:
        pass
    ok, _, detail = text.partition(" ")
    return ok == "ok", detail


def watchdog_ms(trial_s, platform):
    # The trial watchdog: a hang anywhere (even at import) resets the board, which ends the trial.
    ms = trial_s * 1000
    return min(ms, _RP2_WDT_MAX_MS) if platform == "rp2" else ms


def arm():
    # Called by main.py before it imports the firmware: on trial, a hang anywhere resets the board.
    st = state()
    if st and st[0] == "trial":
        import sys

        import machine

        machine.WDT(timeout=watchdog_ms(int(st[2]), sys.platform))


def say(tag, msg):
    print(tag + ": " + msg)
