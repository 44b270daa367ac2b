# Files that must survive a power cut whole: written to NAME.tmp, then renamed over NAME. On
# littlefs (both boards' flash) and on a POSIX filesystem that rename is one step, so NAME is the
# old file or the new one, never half of one. FAT's rename refuses an existing target: there the
# old file is removed first, and read() takes NAME.tmp when a cut came between the two steps.
import os

from micropython import const

_TMP = const(".tmp")


def write(path, data):
    tmp = path + _TMP
    with open(tmp, "wb") as f:
        f.write(data)
    replace(tmp, path)


def replace(src, dst):
    # rename(src, dst) over an existing dst, on every filesystem the boards use.
    try:
        os.rename(src, dst)
    except OSError:
        try:
            os.remove(dst)
        except OSError:
            pass
        os.rename(src, dst)


def write_json(path, doc):
    import json

    write(path, json.dumps(doc).encode())


def read(path):
    # The file's bytes; after a cut between FAT's remove and rename, the finished NAME.tmp.
    # A NAME.tmp beside an existing NAME is an unfinished write and is ignored.
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        pass
    with open(path + _TMP, "rb") as f:
        data = f.read()
    replace(path + _TMP, path)
    return data
