# Code that runs once (config validation, a settings change, an update) is imported for the job
# and dropped after it, so the loop's heap does not carry it.
import gc
import sys


def drop(*names):
    # Forgets the modules "firmware.<name>": their code and tables become garbage, collected at
    # once. Left for a later collection, that space is first passed over by what the loop
    # allocates meanwhile, and freed later it is holes between longer-lived objects: a heap
    # that has room but no block big enough (the smallest heap that runs fell by 7 KB with it).
    import firmware

    freed = False
    for name in names:
        if sys.modules.pop("firmware." + name, None) is not None:
            freed = True
        if hasattr(firmware, name):
            delattr(firmware, name)
    if freed:  # nothing loaded, nothing to collect: node.py drops each step of an update
        gc.collect()
