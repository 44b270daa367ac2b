# The CA certificate for TLS, as the board's ssl module takes it: DER. A PEM file (what
# Mosquitto's docs, openssl and every CA hand out) is the same bytes in base64 between BEGIN and
# END lines; MicroPython's mbedtls reads DER only on some ports (the unix port says "invalid
# cert" to PEM), so the board converts here, once at boot. make flash checks a file with this
# same code and copies it as it is.
_BEGIN = b"-----BEGIN CERTIFICATE-----"
_END = b"-----END CERTIFICATE-----"


def der(data):
    # The first certificate in `data` (PEM or DER bytes) as DER; ValueError saying why not.
    start = data.find(_BEGIN)
    if start >= 0:
        end = data.find(_END, start)
        if end < 0:
            raise ValueError("a PEM certificate without its END line")
        from binascii import a2b_base64

        try:
            data = a2b_base64(data[start + len(_BEGIN) : end])
        except ValueError:
            raise ValueError("a PEM certificate whose base64 is broken") from None
    if _der_size(data) != len(data):
        raise ValueError("not a certificate (PEM or DER)")
    return data


def _der_size(data):
    # The size a DER SEQUENCE at the start of `data` says it has, or -1: a certificate is one
    # SEQUENCE (0x30) with a long-form length of one to three bytes.
    if len(data) < 4 or data[0] != 0x30 or not 0x81 <= data[1] <= 0x83:
        return -1
    n = data[1] - 0x80
    size = 0
    for i in range(n):
        size = size << 8 | data[2 + i]
    return 2 + n + size
