# The setup portal on the setup access point: a DNS responder that answers every name with the
# access point's address, and a small HTTP server with one page to pick a network and type its
# password (and optionally the broker and the device name). Both are non-blocking and driven by
# poll() from the node's loop; every size, count and time is bounded. provision.py loads this
# module when the access point comes up and drops it when it goes down.
import errno
import json
import socket

from micropython import const

from firmware.log import why
from firmware.wifi_join import strongest

_MAX_CONN = const(4)  # connections served at once; Chromium keeps up to 3 idle ones open
_ACCEPT_PER_POLL = const(8)  # a flood of connections cannot hold the loop
_BACKLOG = const(8)  # connections the network stack holds for accept(); more wait or fail
_HEAD_MAX = const(1024)  # request line and headers
_BODY_MAX = const(1024)  # the form: a long broker name and passwords fit, percent-encoded
_CONN_MS = const(5000)  # a whole request and its answer, however slowly the client sends
_DNS_PER_POLL = const(4)
_DNS_MAX = const(512)  # a DNS query over UDP is never longer
_SCAN_MS = const(20000)  # a scan blocks the loop for a moment: not on every page view
_SCAN_SHOWN = const(12)
_ROUND_MS = const(20)  # how soon the loop should come back while someone is connected
_IDLE_MS = const(100)
HTTP_PORT = const(80)
DNS_PORT = const(53)
CONFIG = "config.json"
SECRETS = "secrets.json"

# Where the operating systems look to see whether a network has internet: answered with a
# redirect to the page, which makes a phone open the page by itself.
CHECK_PATHS = ("/generate_204", "/gen_204", "/hotspot-detect.html", "/connecttest.txt")
CHECK_PATHS += ("/ncsi.txt", "/success.txt", "/canonical.html", "/library/test/success.html")

_STATUS = {
    200: "OK",
    302: "Found",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class HttpError(Exception):
    pass


def _again(e):
    # A non-blocking socket with nothing to give or no room to take: try again next poll.
    return e.args and e.args[0] == errno.EAGAIN  # MicroPython has no EWOULDBLOCK (Linux: the same)


# -- DNS ----------------------------------------------------------------------------------------


def dns_answer(query, ip):
    # The reply to one query: every A question answered with ip (4 bytes), any other type
    # answered with no records. None for anything that is not a well-formed single query.
    n = len(query)
    if n < 17 or n > _DNS_MAX or query[2] & 0xF8 or query[4:6] != b"\x00\x01":
        return None  # too short or long, a response, not a standard query, not one question
    i = 12
    while query[i]:
        if query[i] > 63:  # compression pointers have no place in a question
            return None
        i += query[i] + 1
        if i >= n or i > 12 + 255:
            return None
    end = i + 5  # the name's terminating zero, type, class
    if end > n:
        return None
    qtype = query[i + 1] << 8 | query[i + 2]
    answer = qtype in (1, 255)  # A or ANY
    head = bytearray(query[:12])
    head[2] = 0x80 | (query[2] & 1)  # a response, recursion desired copied
    head[3] = 0x80  # recursion available, no error
    head[6:12] = b"\x00\x01\x00\x00\x00\x00" if answer else bytes(6)
    out = head + query[12:end]
    if answer:
        # A pointer to the name in the question, type A, class IN, TTL 60 s, 4 bytes of address.
        out += b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + ip
    return bytes(out)


# -- HTTP ---------------------------------------------------------------------------------------


def parse_head(head):
    # (method, path, content length) from the request line and headers (bytes, without the
    # blank line). Raises HttpError with the status to answer for anything else.
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1.") or parts[1][:1] != b"/":
        raise HttpError(400)
    method = parts[0]
    if method not in (b"GET", b"HEAD", b"POST"):
        raise HttpError(405)
    length = 0
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            raise HttpError(400)
        if name.strip().lower() == b"content-length":
            value = value.strip()
            if not value or not value.isdigit() or len(value) > 7:
                raise HttpError(400 if not value.isdigit() else 413)
            length = int(value)
        elif name.strip().lower() == b"transfer-encoding":
            raise HttpError(400)  # chunked bodies: no form needs one
    if length > _BODY_MAX:
        raise HttpError(413)
    path = parts[1].split(b"?")[0]
    try:
        return method.decode(), path.decode(), length
    except UnicodeError:
        raise HttpError(400) from None


def response(status, body=b"", kind="text/html; charset=utf-8", location=None):
    head = "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n" % (
        status,
        _STATUS[status],
        kind,
        len(body),
    )
    if location:
        head += "Location: %s\r\n" % location
    head += "Cache-Control: no-store\r\nConnection: close\r\n\r\n"
    return head.encode() + body


# -- the page -----------------------------------------------------------------------------------


def escape(text):
    return (
        str(text)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )


def visible_networks(scan):
    # (ssid, rssi, open) of the networks in a scan, each once at its strongest, strongest first;
    # hidden ones (no name) are left out: their name is typed.
    nets = [(ssid, v[0], v[1]) for ssid, v in strongest(scan).items()]
    nets.sort(key=lambda n: -n[1])
    return nets[:_SCAN_SHOWN]


def bars(rssi):
    return "▂▄▆█"[: 1 + (rssi > -80) + (rssi > -70) + (rssi > -60)]


_STYLE = const(
    "body{font:16px sans-serif;margin:0 auto;max-width:28em;padding:1em}"
    "h1{font-size:1.3em}label{display:block;margin-top:.8em}"
    "input{box-sizing:border-box;width:100%;padding:.5em;font-size:1em}"
    ".n{display:block;width:100%;text-align:left;padding:.6em;margin:.2em 0;font-size:1em}"
    ".e{background:#fdd;padding:.6em}.i{background:#def;padding:.6em}"
    "button[type=submit]{margin-top:1em;padding:.7em 2em;font-size:1em}"
)


def page(device, nets, values, note="", error=""):
    # The whole page as bytes. values: what the form shows (never a stored password).
    out = [
        "<!DOCTYPE html><html><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        "<title>%s setup</title><style>%s</style></head><body><h1>%s setup</h1>"
        % (escape(device), _STYLE, escape(device))
    ]
    if error:
        out.append("<p class=e id=error>%s</p>" % escape(error))
    if note:
        out.append("<p class=i id=note>%s</p>" % escape(note))
    out.append(
        "<p>Networks this board sees (tap one, or type a hidden one below):</p><div id=nets>"
    )
    for ssid, rssi, is_open in nets:
        out.append(
            "<button type=button class=n value='%s' onclick='f.ssid.value=this.value;"
            "f.password.focus()'>%s %s %d dBm%s</button>"
            % (escape(ssid), escape(ssid), bars(rssi), rssi, " (open)" if is_open else "")
        )
    if not nets:
        out.append("<p>None found yet.</p>")
    out.append("</div><form id=f name=f method=post action=/save>")
    for name, label, kind in (
        ("ssid", "Wi-Fi network", "text"),
        ("password", "Wi-Fi password (empty for an open network)", "password"),
        ("host", "MQTT broker (optional)", "text"),
        ("port", "MQTT port", "number"),
        ("user", "MQTT user (optional)", "text"),
        ("mqtt_password", "MQTT password (empty: keep the stored one)", "password"),
        ("device", "Device name (optional)", "text"),
    ):
        out.append(
            "<label>%s<input name=%s id=%s type=%s value='%s'></label>"
            % (label, name, name, kind, escape(values.get(name, "")))
        )
    out.append("<button type=submit>Save and join</button></form></body></html>")
    return "".join(out).encode()


# -- the settings a submitted form changes -------------------------------------------------------


def read_json(path):
    # A settings file as it is (a dict), {} when it is missing or broken: the new values are
    # merged into what can be kept.
    try:
        with open(path) as f:
            found = json.load(f)
    except (OSError, ValueError, RuntimeError, MemoryError):
        return {}
    return found if type(found) is dict else {}


# -- the server ---------------------------------------------------------------------------------


def _bound(kind, host, port):
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(socket.getaddrinfo(host, port)[0][-1])
        s.setblocking(False)
    except OSError:
        s.close()
        raise
    return s


class _Conn:
    def __init__(self, sock, deadline):
        self.sock = sock
        self.deadline = deadline
        self.buf = None  # allocated when the first bytes come: a browser's idle spare costs none
        self.fill = 0
        self.head = 0  # where the body starts, once the head has come
        self.length = 0
        self.request = None  # (method, path) once the head has come
        self.out = None  # the response, while it is being sent
        self.sent = 0


class Portal:
    def __init__(
        self,
        ip,
        device,
        wifi,
        clock,
        log,
        http=HTTP_PORT,
        dns=DNS_PORT,
        host="0.0.0.0",
        check=None,
    ):
        self.ip = ip  # the access point's address, which every name resolves to
        self.ip_bytes = bytes([int(x) for x in ip.split(".")])
        self.device = device
        self.wifi = wifi  # wifi_join.Join: scan(), join_now(net), asked, asked_fail
        self.clock = clock
        self.log = log
        self.check = check  # config.check, or None: portal_form loads config.py for each save
        self.conns = []
        self.nets = []
        self.scanned = None  # when the last scan was made
        self.restart = False  # a submitted form changed config.json: restart once joined
        self.listener = _bound(socket.SOCK_STREAM, host, http)
        try:
            self.listener.listen(_BACKLOG)
            self.dns = _bound(socket.SOCK_DGRAM, host, dns)
        except OSError:
            self.listener.close()
            raise

    def close(self):
        for c in self.conns:
            c.sock.close()
        self.conns = []
        self.listener.close()
        self.dns.close()

    def due_in(self, now):
        return _ROUND_MS if self.conns else _IDLE_MS

    def poll(self, now):
        self._answer_dns()
        self._accept(now)
        for c in list(self.conns):
            try:
                self._serve(c, now)
            except OSError:
                self._drop(c)  # the client went away
            except MemoryError:
                self._drop(c)
                self.log("setup", "out of memory answering a request; its connection closed")

    def _answer_dns(self):
        for _ in range(_DNS_PER_POLL):
            try:
                query, addr = self.dns.recvfrom(_DNS_MAX)
            except OSError:
                return  # nothing waiting
            reply = dns_answer(query, self.ip_bytes)
            if reply is not None:
                try:
                    self.dns.sendto(reply, addr)
                except OSError:
                    pass

    def _accept(self, now):
        for _ in range(_ACCEPT_PER_POLL):
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            sock.setblocking(False)
            if len(self.conns) >= _MAX_CONN:
                # Room is made by closing the oldest connection that has sent nothing yet (a
                # browser's spare); when every one is busy, the newcomer is told to come back.
                idle = [c for c in self.conns if not c.fill and c.out is None]
                if not idle:
                    self._refuse(sock)
                    continue
                self._drop(idle[0])
            self.conns.append(_Conn(sock, self.clock.ticks_add(now, _CONN_MS)))

    def _refuse(self, sock):
        try:
            sock.send(response(503, b"busy"))
        except OSError:
            pass
        sock.close()

    def _drop(self, c):
        try:
            c.sock.close()
        except OSError:
            pass
        if c in self.conns:
            self.conns.remove(c)

    def _serve(self, c, now):
        # The deadline covers the whole exchange: a client that never reads its answer is
        # dropped like one that never finishes its request.
        late = self.clock.ticks_diff(now, c.deadline) >= 0
        if c.out is not None:
            if late:
                self._drop(c)
            else:
                self._send(c)
        elif late:
            self._reply(c, response(408, b"too slow"))
            self._drop(c)  # whatever of the 408 did not fit at once is not waited for
        else:
            self._receive(c, now)

    def _send(self, c):
        try:
            n = c.sock.send(c.out[c.sent :])
        except OSError as e:
            if _again(e):
                return
            raise
        c.sent += n or 0
        if c.sent >= len(c.out):
            self._drop(c)

    def _reply(self, c, data):
        c.out = memoryview(data)
        c.buf = None  # the request is done with: its buffer goes back to the heap
        self._send(c)

    def _receive(self, c, now):
        try:
            data = c.sock.recv(_HEAD_MAX + _BODY_MAX - c.fill)
        except OSError as e:
            if _again(e):
                return
            raise
        if not data:
            self._drop(c)
            return
        buf = c.buf
        if buf is None:
            buf = c.buf = bytearray(_HEAD_MAX + _BODY_MAX)
        buf[c.fill : c.fill + len(data)] = data
        c.fill += len(data)
        try:
            if c.request is None:
                end = bytes(buf[: min(c.fill, _HEAD_MAX)]).find(b"\r\n\r\n")
                if end < 0:
                    if c.fill >= _HEAD_MAX:
                        raise HttpError(431)
                    return
                method, path, c.length = parse_head(bytes(buf[:end]))
                c.request = (method, path)
                c.head = end + 4
            if c.fill - c.head < c.length:
                return
            body = bytes(buf[c.head : c.head + c.length])
            data = self.handle(c.request[0], c.request[1], body, now)
            if c.request[0] == "HEAD":  # the head alone
                data = data[: data.find(b"\r\n\r\n") + 4]
            self._reply(c, data)
        except HttpError as e:
            status = e.args[0]
            self._reply(c, response(status, _STATUS[status].encode()))

    # -- what the page does ------------------------------------------------------------------

    def handle(self, method, path, body, now):
        # The response to one complete request (bytes).
        if path in CHECK_PATHS:
            return response(302, location="/")
        if path == "/" or path == "/index.html":
            return response(200, self.render(now))
        if path == "/save":
            if method != "POST":
                return response(302, location="/")
            return self.save(body, now)
        if path == "/favicon.ico":
            return response(404)
        return response(302, location="/")  # any other name the DNS answer brought here

    def render(self, now, error="", values=None):
        if values is None:
            values = self._stored()
        return page(self.device, self._networks(now), values, self._note(), error)

    def _networks(self, now):
        if self.scanned is None or self.clock.ticks_diff(now, self.scanned) >= _SCAN_MS:
            self.scanned = now
            try:
                self.nets = visible_networks(self.wifi.scan())
            except OSError as e:
                self.scanned = None  # the next view tries again
                self.log("setup", "scan failed (%s); the page lists no networks yet" % why(e))
        return self.nets

    def _stored(self):
        # What the form starts with: the stored broker and name; never a password.
        cfg = read_json(CONFIG)
        mqtt = cfg.get("mqtt")
        if type(mqtt) is not dict:
            mqtt = {}
        out = {"ssid": self.wifi.asked or ""}
        for field, value in (
            ("host", mqtt.get("host")),
            ("port", mqtt.get("port")),
            ("device", cfg.get("device_id")),
        ):
            if type(value) in (str, int) and type(value) is not bool:
                out[field] = str(value)
        return out

    def _note(self):
        # The name as typed: repr() on a board would escape every non-ASCII letter.
        asked = self.wifi.asked
        if asked is None:
            return ""
        if self.wifi.asked_fail:
            return (
                "Joining '%s' failed (%s). Check the network and its password and save again; "
                "this setup network stays up." % (asked, self.wifi.asked_fail)
            )
        then = " then restarts to use the new settings," if self.restart else ""
        return (
            "Saved. The board is joining '%s'; once it has,%s this setup network goes away. "
            "If the join fails, reload this page to see why." % (asked, then)
        )

    def save(self, body, now):
        # The form's code is loaded for the moment it is needed (firmware/portal_form.py).
        from firmware import portal_form
        from firmware.unload import drop

        try:
            said, shown, net, restart = portal_form.apply(body, self.check)
        except (ValueError, UnicodeError):
            return response(400, b"malformed form")
        except OSError as e:
            said = "the settings could not be written (%s)" % why(e)
            self.log("setup", said)
            return response(500, self.render(now, said, {}))
        finally:
            del portal_form
            drop("portal_form")
        if net is None:  # refused: said says why
            self.log("setup", "the page's settings were refused: %s" % said)
            return response(400, self.render(now, said, shown))
        if restart:
            self.restart = True
        self.log("setup", "the page saved network %r; joining it now" % net["ssid"])
        self.wifi.join_now(net)
        return response(200, self.render(now, "", shown))
