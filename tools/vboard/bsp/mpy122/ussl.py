# `ussl` as a MicroPython 1.22 board has it (its ssl module under the old u-name), which
# umqtt.simple 1.3.4 imports for TLS. Host-only, on the path of a board with that umqtt: the unix
# port's ssl takes the same wrap_socket() arguments (cert_reqs, cadata, server_hostname).
from ssl import CERT_NONE, CERT_OPTIONAL, CERT_REQUIRED, SSLContext, wrap_socket  # noqa: F401
