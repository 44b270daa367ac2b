# Provisioning: when no known network can be joined, the board opens an access point so that a
# person can reach it. The portal that takes new Wi-Fi credentials plugs in at portal().
import network


def portal(ap, log):
    # The place for the provisioning portal; this firmware has none yet, so it says how to fix
    # the board by hand.
    log("setup", "no portal in this firmware: write secrets.json over USB (make provision)")


class AccessPoint:
    def __init__(self, ssid, password, log):
        self.ssid = ssid
        self.password = password  # None: an open network, said so on the console
        self.log = log
        self.ap = None

    def start(self):
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
        portal(ap, self.log)

    def stop(self):
        if self.ap is not None:
            self.ap.active(False)
            self.ap = None
            self.log("setup", "access point %r is down: joined a known network" % self.ssid)
