# The MQTT topic contract (docs/topics.md), built once at boot so the loop never formats a topic.
# Topics are bytes, as umqtt hands them back and as they go on the wire: nothing is encoded per
# publish. device stays text, for the console and JSON.


class Topics:
    def __init__(self, base, device):
        prefix = (base + "/" + device + "/").encode()
        self.device = device
        self.status = prefix + b"status"
        self.readings = prefix + b"readings"
        self.heartbeat = prefix + b"heartbeat"
        self.cmd = prefix + b"cmd"
        self.event = prefix + b"event"
        self.ota = prefix + b"ota"  # an update's pieces, from the host
        self.ota_want = prefix + b"ota/want"  # which piece the node asks for next
