# Who this board is: the board name from sys.platform and the device id that names its topics.

# The boards this firmware runs on, the one table of them: sys.platform -> (board name, the
# architecture mpy-cross compiles for). The host tools (flash, compile, the virtual board) read it.
BOARDS = {"esp32": ("esp32", "xtensawin"), "rp2": ("picow", "armv6m")}


def board_name(platform):
    known = BOARDS.get(platform)
    return known[0] if known else platform


def device_id(board, uid, configured=None):
    # <board>-<last 6 hex digits of the unique id>, unless the config names the device. The
    # virtual board's supervisor names its boards by this same function.
    if configured:
        return configured
    tail = uid[-3:]
    return board + "-" + "".join(["%02x" % b for b in tail])
