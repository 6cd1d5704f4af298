"""Mutations of MQTT byte streams. Each takes (rng, data, seeds) and returns new bytes:
generic ones (bit flips, bytes and chunks inserted, deleted, swapped, truncation,
splicing two seeds) and MQTT-aware ones (remaining lengths, property lengths and
bogus properties, a packet repeated, a second CONNECT, another packet type)."""

from mqtt_wire import (PACKET_CONNECT, decode_varint, encode_varint, packet, property_offset,
                       split_packets)

MAX_SEQUENCE = 64 * 1024    # bigger streams only cost time: the broker reads them the same way
LARGE_VARINTS = [
    b"\xff\xff\xff\x7f",            # 268435455, the largest valid remaining length
    b"\xff\xff\xff\xff\x7f",        # five bytes: invalid
    b"\x80\x80\x80\x80\x01",        # five bytes, value 2^28
    b"\xff\xff\xff\xff",            # never terminated
    b"\x80\x80\x80\x00",            # non-minimal encoding of 0
    b"\xff\x7f",                    # 16383
]
INTERESTING_BYTES = [0x00, 0x01, 0x02, 0x7F, 0x80, 0x81, 0xFE, 0xFF, 0x3F, 0x40, 0xC0, 0x10, 0x30]
# Properties that are bogus on their own or carry a length the packet cannot hold.
BOGUS_PROPERTIES = [
    b"\x26\xff\xff",                      # User Property, key 65535 bytes long
    b"\x26\x00\x01k\xff\xff",             # User Property, value 65535 bytes long
    b"\x08\xff\xff",                      # Response Topic 65535 bytes long
    b"\x09\x7f\xff",                      # Correlation Data 32767 bytes long
    b"\x0b\xff\xff\xff\x7f",              # Subscription Identifier 268435455
    b"\x0b\x00",                          # Subscription Identifier 0 (invalid)
    b"\x23\x00\x00",                      # Topic Alias 0 (invalid)
    b"\x23\xff\xff",                      # Topic Alias 65535
    b"\x01\x02",                          # Payload Format Indicator 2 (invalid)
    b"\x02\xff\xff\xff\xff",              # Message Expiry Interval max
    b"\x11\x00\x00\x00\x00\x11\x00\x00\x00\x01",  # Session Expiry Interval twice
    b"\x21\x00\x00",                      # Receive Maximum 0 (invalid)
    b"\x27\x00\x00\x00\x00",              # Maximum Packet Size 0 (invalid)
    b"\x15\x00\x04toke",                  # Authentication Method (enhanced auth)
    b"\x16\x00\x01x",                     # Authentication Data without a method
    b"\xff",                              # unknown property identifier
    b"\x80\x80\x80\x80\x01",              # identifier as an overlong varint
]


def mutate_bit_flip(rng, data, seeds):
    if not data:
        return data
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def random_byte(rng):
    return rng.choice(INTERESTING_BYTES) if rng.random() < 0.5 else rng.randrange(256)


def mutate_byte_replace(rng, data, seeds):
    if not data:
        return data
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        out[rng.randrange(len(out))] = random_byte(rng)
    return bytes(out)


def mutate_byte_insert(rng, data, seeds):
    at = rng.randrange(len(data) + 1)
    inserted = bytes(random_byte(rng) for _ in range(rng.randint(1, 8)))
    return data[:at] + inserted + data[at:]


def mutate_byte_delete(rng, data, seeds):
    if not data:
        return data
    at = rng.randrange(len(data))
    return data[:at] + data[at + rng.randint(1, 4):]


def random_chunk(rng, data):
    start = rng.randrange(len(data))
    return start, min(len(data), start + rng.randint(1, 64))


def mutate_chunk_duplicate(rng, data, seeds):
    if not data:
        return data
    start, end = random_chunk(rng, data)
    at = rng.randrange(len(data) + 1)
    return data[:at] + data[start:end] * rng.randint(1, 4) + data[at:]


def mutate_chunk_delete(rng, data, seeds):
    if not data:
        return data
    start, end = random_chunk(rng, data)
    return data[:start] + data[end:]


def mutate_chunk_swap(rng, data, seeds):
    if len(data) < 4:
        return data
    a, b = sorted(rng.sample(range(len(data)), 2))
    n = rng.randint(1, max(1, min(32, b - a)))
    if a + n > b:
        return data
    return data[:a] + data[b:b + n] + data[a + n:b] + data[a:a + n] + data[b + n:]


def mutate_splice(rng, data, seeds):
    """This sequence's front with another seed's tail, at a byte or at a packet boundary."""
    other = rng.choice(seeds)
    mine, theirs = split_packets(data), split_packets(other)
    if rng.random() < 0.5 and mine and theirs:
        cut = mine[rng.randrange(len(mine))][2]
        return data[:cut] + other[theirs[rng.randrange(len(theirs))][0]:]
    return data[:rng.randrange(len(data) + 1)] + other[rng.randrange(len(other) + 1):]


def mutate_truncate(rng, data, seeds):
    return data[:rng.randrange(len(data))] if data else data


def random_packet(rng, data):
    packets = split_packets(data)
    return packets[rng.randrange(len(packets))] if packets else None


def mutate_remaining_length(rng, data, seeds):
    """A packet claims a huge or malformed remaining length; its bytes stay as they were."""
    chosen = random_packet(rng, data)
    if chosen is None:
        return data
    start, body, _ = chosen
    value = rng.choice(LARGE_VARINTS + [encode_varint(rng.randrange(1 << 28))])
    return data[:start + 1] + value + data[body:]


def mutate_property_length(rng, data, seeds):
    """A v5 packet's Property Length says too much, or its properties gain a bogus one."""
    candidates = [(s, b, e, off) for s, b, e in split_packets(data)
                  for off in [property_offset(data, s, b, e)] if off is not None]
    if not candidates:
        return mutate_remaining_length(rng, data, seeds)
    start, body, end, off = rng.choice(candidates)
    old = decode_varint(data, off, end)
    if old is None:
        return data
    if rng.random() < 0.5:
        # The lengths around stay, so the decoder must notice the properties overrun the packet.
        value = rng.choice(LARGE_VARINTS + [encode_varint(end - old[1] + rng.randint(1, 1000))])
        return data[:off] + value + data[old[1]:]
    # A bogus property, framed correctly, so that the property decoder has to judge it.
    bogus = rng.choice(BOGUS_PROPERTIES)
    new_body = (data[body:off] + encode_varint(old[0] + len(bogus)) + bogus + data[old[1]:end])
    return data[:start] + packet(data[start], new_body) + data[end:]


def mutate_repeat_packet(rng, data, seeds):
    chosen = random_packet(rng, data)
    if chosen is None:
        return data
    start, _, end = chosen
    times = rng.choice([2, 3, 10, 50, 200, 1000])
    times = max(1, min(times, MAX_SEQUENCE // max(1, end - start)))
    return data[:end] + data[start:end] * times + data[end:]


def mutate_second_connect(rng, data, seeds):
    """A CONNECT (this sequence's own or another seed's) after some packet."""
    connects = [s for s in seeds if s and s[0] >> 4 == PACKET_CONNECT]
    source = data if data and data[0] >> 4 == PACKET_CONNECT and rng.random() < 0.5 else rng.choice(connects)
    first = split_packets(source)
    if not first:
        return data
    connect = source[first[0][0]:first[0][2]]
    boundaries = [e for _, _, e in split_packets(data)] or [len(data)]
    at = rng.choice(boundaries)
    return data[:at] + connect + data[at:]


def mutate_type_nibble(rng, data, seeds):
    chosen = random_packet(rng, data)
    if chosen is None:
        return data
    start = chosen[0]
    flags = data[start] & 0x0F if rng.random() < 0.7 else rng.randrange(16)
    return data[:start] + bytes([rng.randrange(16) << 4 | flags]) + data[start + 1:]


MUTATIONS = [
    (mutate_bit_flip, 3), (mutate_byte_replace, 3), (mutate_byte_insert, 2),
    (mutate_byte_delete, 2), (mutate_chunk_duplicate, 2), (mutate_chunk_delete, 2),
    (mutate_chunk_swap, 1), (mutate_splice, 2), (mutate_truncate, 2),
    (mutate_remaining_length, 2), (mutate_property_length, 3), (mutate_repeat_packet, 1),
    (mutate_second_connect, 2), (mutate_type_nibble, 2),
]
MUTATION_FUNCTIONS = [m for m, _ in MUTATIONS]
MUTATION_WEIGHTS = [w for _, w in MUTATIONS]


def mutate(rng, seed, seeds):
    """A few stacked mutations of seed: (bytes, names of the mutations)."""
    data, names = seed, []
    for mutation in rng.choices(MUTATION_FUNCTIONS, MUTATION_WEIGHTS, k=rng.choice([1, 1, 2, 2, 3, 4, 6])):
        data = mutation(rng, data, seeds)[:MAX_SEQUENCE]
        names.append(mutation.__name__[len("mutate_"):])
    return data, names

