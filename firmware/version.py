# The one place the firmware version lives; package.json must agree (a host test checks).
VERSION = "0.1.0"
