# Who this board is: the board name from sys.platform and the device id that names its topics.

BOARDS = {"esp32": "esp32", "rp2": "picow"}


def board_name(platform):
    return BOARDS.get(platform, platform)


def device_id(board, uid, configured=None):
    # <board>-<last 6 hex digits of the unique id>, unless the config names the device.
    if configured:
        return configured
    tail = uid[-3:]
    return board + "-" + "".join(["%02x" % b for b in tail])
