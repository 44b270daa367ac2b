# The MQTT topic contract (design.md), built once at boot so the loop never formats a topic.


class Topics:
    def __init__(self, base, device):
        prefix = base + "/" + device + "/"
        self.device = device
        self.status = prefix + "status"
        self.readings = prefix + "readings"
        self.heartbeat = prefix + "heartbeat"
        self.cmd = prefix + "cmd"
        self.event = prefix + "event"

    def discovery(self, sensor_key):
        return "homeassistant/sensor/" + self.device + "_" + sensor_key + "/config"
