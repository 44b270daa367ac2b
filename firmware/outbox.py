# Readings taken while offline wait here: a fixed ring of slots, oldest first out, and when it
# is full the oldest is dropped and counted, so memory stays bounded through any outage.


class Outbox:
    def __init__(self, size):
        self.slots = [None] * size
        self.head = 0  # index of the oldest entry
        self.count = 0
        self.dropped = 0

    def push(self, payload):
        size = len(self.slots)
        if self.count == size:
            self.head = (self.head + 1) % size
            self.count -= 1
            self.dropped += 1
        self.slots[(self.head + self.count) % size] = payload
        self.count += 1

    def peek(self):
        return self.slots[self.head] if self.count else None

    def pop(self):
        # Called only once the oldest entry is safely out.
        payload = self.slots[self.head]
        self.slots[self.head] = None
        self.head = (self.head + 1) % len(self.slots)
        self.count -= 1
        return payload
