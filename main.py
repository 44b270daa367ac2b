# Starts the node unless boot.py's safe-mode window was used (then the REPL is yours).
if not globals().get("SAFE_MODE"):
    import firmware.app

    firmware.app.run()
