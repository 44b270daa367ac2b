# Code that runs once (config validation, a settings change, an update) is imported for the job
# and dropped after it, so the loop's heap does not carry it.
import sys


def drop(*names):
    # Forgets the modules "firmware.<name>": their code and tables become garbage.
    import firmware

    for name in names:
        sys.modules.pop("firmware." + name, None)
        if hasattr(firmware, name):
            delattr(firmware, name)
