# Provisioning: when no known network can be joined, the board opens an access point so that a
# person can reach it, and serves the setup portal on it (firmware/portal.py). The portal's code
# is loaded when the access point comes up and dropped when it goes down.
import network

from firmware.log import why
from firmware.unload import drop


class AccessPoint:
    def __init__(self, ssid, password, log, clock=None, reset=None):
        self.ssid = ssid
        self.password = password  # None: an open network, said so on the console
        self.log = log
        self.clock = clock  # time, or a stand-in: ticks for the portal's deadlines
        self.reset = reset  # restarts the board when the portal changed config.json
        self.ap = None
        self.portal = None

    def start(self, wifi=None):
        ap = network.WLAN(network.AP_IF)
        if self.password:
            # v1.23+ names it security (the Pico W offers WPA/WPA2 mixed, the ESP32 plain WPA2);
            # older ESP32 firmware calls it authmode.
            sec = getattr(network.WLAN, "SEC_WPA2", None)
            if sec is None:
                sec = getattr(network.WLAN, "SEC_WPA_WPA2", None)
            if sec is None:
                ap.config(essid=self.ssid, password=self.password, authmode=3)
            else:
                ap.config(essid=self.ssid, password=self.password, security=sec)
        else:
            ap.config(essid=self.ssid)
        ap.active(True)
        self.ap = ap
        how = "with the password from secrets.json" if self.password else "open (no ap_password)"
        self.log(
            "setup",
            "access point %r is up at %s, %s; still trying known networks"
            % (self.ssid, ap.ifconfig()[0], how),
        )
        if wifi is not None and self.clock is not None:
            self._open_portal(ap.ifconfig()[0], wifi)

    def _open_portal(self, ip, wifi):
        try:
            from firmware.portal import Portal

            name = self.ssid[:-6] if self.ssid.endswith("-setup") else self.ssid
            self.portal = Portal(ip, name, wifi, self.clock, self.log)
        except (OSError, MemoryError) as e:
            self.portal = None
            drop("portal")
            self.log("setup", "no setup page (%s); make provision over USB instead" % why(e))
            return
        self.log("setup", "setup page at http://%s/ (port 80); every name resolves to it" % ip)

    def due_in(self, now):
        return 1000 if self.portal is None else self.portal.due_in(now)

    def poll(self, now):
        if self.portal is not None:
            self.portal.poll(now)

    def stop(self):
        restart = False
        if self.portal is not None:
            restart = self.portal.restart
            self.portal.close()
            self.portal = None
            drop("portal")
        if self.ap is not None:
            self.ap.active(False)
            self.ap = None
            self.log("setup", "access point %r is down: joined a known network" % self.ssid)
        if restart and self.reset is not None:
            self.log("setup", "restarting to use the settings saved on the setup page")
            self.reset()
