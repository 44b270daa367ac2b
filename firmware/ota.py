# Downloading an update over MQTT, loaded only while one runs. The node asks for one piece at a
# time on <base>/<id>/ota/want ("file offset max-bytes"); the host answers on <base>/<id>/ota with
# a 6-byte header (file, offset) and the bytes. File 0 is the manifest: its last line is the
# HMAC-SHA256 (key: ota_key in secrets.json) of everything before it. Files 1..n are the ones the
# manifest lists with size and sha256. Each piece goes straight to ota/new/<n> and into the
# file's running hash, so RAM use does not grow with the update. A file already in ota/new is
# hashed again from flash and continued: an interrupted download resumes.
import hashlib
import os
import struct
import sys

from micropython import const

from firmware import atomic, otaboot

CHUNK = const(1024)  # bytes per piece: with the header and topic, well under a few KB
MANIFEST_MAX = const(8192)
_MAC_LINE = const(70)  # "hmac " + 64 hex digits + "\n"
_HEADER = const(6)
_PART = const("ota/manifest.part")  # outside ota/new, which a new manifest empties
SEEN = "ota/seen"  # the counter of the newest manifest this board accepted
_ASK_MS = const(3000)  # a piece not here by then is asked for again
_SILENCE_MS = const(30000)  # a host silent this long has gone: the download stops


class UpdateError(Exception):
    pass


def _hex(b):
    return "".join(["%02x" % x for x in b])


class Hmac:
    # HMAC-SHA256 (RFC 2104) over data fed in pieces.
    def __init__(self, key):
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        pad = bytearray(64)
        pad[: len(key)] = key
        self.outer_key = bytearray(64)
        for i in range(64):
            self.outer_key[i] = pad[i] ^ 0x5C
            pad[i] ^= 0x36
        self.inner = hashlib.sha256(pad)

    def update(self, data):
        self.inner.update(data)

    def hexdigest(self):
        outer = hashlib.sha256(self.outer_key)
        outer.update(self.inner.digest())
        return _hex(outer.digest())


def _version(text):
    try:
        return tuple([int(p) for p in text.split(".")])
    except ValueError:
        return ()


def _safe_path(path):
    # Only what an update may replace: boot.py, main.py, firmware/<module>.
    if path in ("boot.py", "main.py"):
        return True
    if not path.startswith("firmware/") or path.count("/") != 1 or ".." in path:
        return False
    return path.endswith(".mpy") or path.endswith(".py")


def _seen():
    try:
        return int(atomic.read(SEEN))
    except (OSError, ValueError):
        return 0


def _size(path):
    try:
        return os.stat(path)[6]
    except OSError:
        return -1


def _mkdir(path):
    try:
        os.mkdir(path)
    except OSError:
        pass


class Update:
    def __init__(self, key, running, mpy, log):
        self.key = key.encode()
        self.running = running  # the running firmware's version text
        self.mpy = mpy  # sys.implementation._mpy: .mpy version and architecture
        self.log = log
        self.files = []  # [(sha, size, path)] once the manifest is verified
        self.fields = {}
        self.index = 0  # the file being fetched (0: the manifest)
        self.offset = 0
        self.size = 0
        self.hash = hashlib.sha256()
        self.mac = Hmac(self.key)
        self.tail = bytearray(_MAC_LINE)  # the manifest's HMAC line, as it arrives
        self.done = False

    def start(self, manifest_size):
        # Returns the first want. A staged manifest of the same size is checked again as it
        # arrives: identical bytes keep the files already downloaded.
        if not _MAC_LINE < manifest_size <= MANIFEST_MAX:
            raise UpdateError("manifest of %d bytes: at most %d" % (manifest_size, MANIFEST_MAX))
        if otaboot.state():
            raise UpdateError("an update is being switched or on trial; wait for it to finish")
        _mkdir(otaboot.DIR)
        _mkdir(otaboot.NEW)
        self.size = manifest_size
        self._begin_manifest()
        return self.want()

    def _begin_manifest(self):
        self.index = 0
        self.offset = 0
        self.mac = Hmac(self.key)
        self.hash = hashlib.sha256()
        try:
            os.remove(_PART)
        except OSError:
            pass

    def want(self):
        left = self.size - self.offset
        return b"%d %d %d" % (self.index, self.offset, min(left, CHUNK))

    def _path(self):
        return _PART if self.index == 0 else otaboot.NEW + "/%d" % self.index

    def piece(self, msg):
        # One answer from the host. Returns the next want, or None when the update is complete.
        # A piece for another place (a late duplicate) is ignored: the want is asked again.
        if len(msg) < _HEADER:
            raise UpdateError("piece of %d bytes is shorter than its header" % len(msg))
        index, offset = struct.unpack_from(">HI", msg)
        n = len(msg) - _HEADER
        if index != self.index or offset != self.offset:
            return self.want()
        if n != min(self.size - offset, CHUNK):
            raise UpdateError(
                "piece of file %d at %d: %d bytes where %d were asked for"
                % (index, offset, n, min(self.size - offset, CHUNK))
            )
        data = memoryview(msg)[_HEADER:]
        with open(self._path(), "ab") as f:
            f.write(data)
        self._feed(data, offset)
        self.offset += n
        if self.offset < self.size:
            return self.want()
        return self._finish_file()

    def _feed(self, data, offset):
        if self.index:
            self.hash.update(data)
            return
        # The manifest: the HMAC covers everything before its last line, which holds the HMAC.
        body = self.size - _MAC_LINE
        if offset < body:
            self.mac.update(data[: body - offset] if offset + len(data) > body else data)
        for i in range(max(0, body - offset), len(data)):
            self.tail[offset + i - body] = data[i]

    def _finish_file(self):
        if self.index == 0:
            self._finish_manifest()
        else:
            want = self.files[self.index - 1][0]
            got = _hex(self.hash.digest())
            if got != want:
                os.remove(self._path())
                raise UpdateError(
                    "%s: sha256 %s... is not the manifest's %s..."
                    % (self.files[self.index - 1][2], got[:12], want[:12])
                )
        return self._next_file()

    def _finish_manifest(self):
        part = _PART
        line = bytes(self.tail).decode()
        if not line.startswith("hmac ") or line[5:69] != self.mac.hexdigest():
            os.remove(part)
            raise UpdateError("manifest refused: its HMAC is wrong (another ota_key?)")
        same = _same_files(part, otaboot.MANIFEST)
        if not same:
            otaboot._rmtree(otaboot.NEW)  # another update's pieces: start afresh
            _mkdir(otaboot.NEW)
        atomic.replace(part, otaboot.MANIFEST)
        self.fields, self.files = otaboot.manifest()
        try:
            self._check_manifest()
        except UpdateError:
            os.remove(otaboot.MANIFEST)
            raise
        self.log(
            "update",
            "manifest for %s verified: %d files, %d bytes%s"
            % (
                self.fields["version"],
                len(self.files),
                sum([f[1] for f in self.files]),
                "; resuming" if same else "",
            ),
        )

    def _check_manifest(self):
        f = self.fields
        if f.get("format") != "1" or "version" not in f or "counter" not in f:
            raise UpdateError("manifest lacks format 1, version or counter")
        counter = int(f["counter"])
        if counter <= _seen():
            raise UpdateError(
                "manifest refused: counter %d is not newer than this board's %d (a replay?)"
                % (counter, _seen())
            )
        forced = f.get("force") == "1"
        if not forced and _version(f["version"]) <= _version(self.running):
            raise UpdateError(
                "version %s is not newer than the running %s (force to install it)"
                % (f["version"], self.running)
            )
        if f.get("mpy") != str(self.mpy):
            raise UpdateError(
                "manifest is built for .mpy %s, this board loads %s" % (f.get("mpy"), self.mpy)
            )
        names = []
        for entry in self.files:
            path = entry[2]
            if not _safe_path(path) or path in names:
                raise UpdateError("manifest names %r, which an update may not write" % path[:40])
            names.append(path)
        for must in ("boot.py", "main.py", "firmware/otaboot.mpy"):
            if must not in names and must.replace(".mpy", ".py") not in names:
                raise UpdateError("manifest lacks %s: the update could not roll back" % must)
        _space(sum([s for _, s, _ in self.files]))

    def _next_file(self):
        # Moves on to the first file not yet complete in ota/new (hashing what is there).
        while self.index < len(self.files):
            self.index += 1
            sha, size, path = self.files[self.index - 1]
            self.size = size
            self.hash = hashlib.sha256()
            have = _size(self._path())
            if have > size:
                os.remove(self._path())
                have = -1
            self.offset = max(0, have)
            if have > 0:
                _hash_file(self._path(), self.hash)
            if self.offset < size:
                return self.want()
            if _hex(self.hash.digest()) == sha:
                continue
            os.remove(self._path())  # whole but wrong: fetch it again
            self.hash = hashlib.sha256()
            self.offset = 0
            return self.want()
        self._ready()
        return None

    def _ready(self):
        # Everything is here and verified: the next boot switches (otaboot).
        atomic.write(SEEN, self.fields["counter"].encode())
        atomic.write(otaboot.STATE, b"ready")
        self.done = True
        self.log("update", "%s downloaded and verified; switching at reboot" % self.version)

    @property
    def version(self):
        return self.fields.get("version", "?")


def _hash_file(path, h):
    buf = bytearray(256)
    with open(path, "rb") as f:
        while True:
            n = f.readinto(buf)
            if not n:
                return
            h.update(buf if n == 256 else memoryview(buf)[:n])


def _file_lines(path):
    # A manifest's file lines (sha256 size path), hashed: two manifests that list the same
    # files (another counter, another run of make ota) share what is already downloaded.
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            line = f.readline()
            if not line:
                return h.digest()
            if len(line) > 65 and line[64] == 32:  # a space after 64 hex digits
                h.update(line)


def _same_files(a, b):
    try:
        return _file_lines(a) == _file_lines(b)
    except OSError:
        return False


def _space(needed):
    # The new files and the copy of the old ones must both fit.
    try:
        st = os.statvfs("/")
    except (OSError, AttributeError):
        return
    free = st[0] * st[3]
    if free < 2 * needed:
        raise UpdateError("%d bytes free, the update needs about %d" % (free, 2 * needed))


def board_mpy():
    return getattr(sys.implementation, "_mpy", 0)


# -- the node's side of a download under way (started by the update command, commands.py) --


def want(node, msg, now):
    node.update_asked = now
    # QoS 0: no PUBACK to wait for per piece; a lost request is asked again after a while
    node.session.publish(node.topics.ota_want, msg, False, 0, now)


def step(node, now):
    # Each node step while node.update is set: the piece that came, if any, goes to the update.
    piece = node.session.piece
    node.session.piece = None
    up = node.update
    if up.done:
        if not node.outbox.count:  # nothing kept in RAM is lost by the reboot
            node.reboot_requested = True
        return
    if piece is None:
        waited = node.clock.ticks_diff(now, node.update_asked)
        if waited > _SILENCE_MS:
            _failed(
                node,
                "no piece came for %d s; what arrived is kept and a new make ota resumes it"
                % (_SILENCE_MS // 1000),
                now,
            )
        elif waited > _ASK_MS:
            want(node, up.want(), now)
        return
    try:
        nxt = up.piece(piece)
    except Exception as e:
        _failed(node, e, now)
        return
    if nxt is not None:
        want(node, nxt, now)
        return
    from firmware import report

    detail = "%s downloaded and verified; rebooting into it on trial" % up.version
    report.send_event(node, "update", True, detail, node.update_req, now)


def _failed(node, e, now):
    from firmware import report

    report.update_failed(node, e, now)
