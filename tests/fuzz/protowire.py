"""Protobuf wire-format mutations for the gRPC fuzzer.

A message is read into a tree of fields (number, wire type, value), nested
messages included where their bytes parse as fields, so that a mutation can
reach a field at any depth and the lengths around it are written again to
match (the decoder then judges the field itself), or, for the mutations that
are about the framing, deliberately do not match. Each mutation takes
(rng, data, seeds) like the byte-level ones of the wire fuzzer and returns new
bytes.
"""

VARINT, I64, LEN, SGROUP, EGROUP, I32 = 0, 1, 2, 3, 4, 5
MAX_FIELD = (1 << 29) - 1
MAX_DEPTH = 8  # of the nesting that is looked into (the peer protocol nests 5 deep)

INTERESTING_U64 = [0, 1, 2, 127, 128, 255, 256, 65535, 65536, (1 << 31) - 1, 1 << 31, (1 << 32) - 1,
                   1 << 32, 1 << 53, (1 << 63) - 1, 1 << 63, (1 << 64) - 2, (1 << 64) - 1]
HUGE_LENGTHS = [(1 << 31) - 1, 1 << 31, (1 << 32) - 1, 1 << 32, 1 << 35, (1 << 63) - 1, (1 << 64) - 1]
JUNK_STRINGS = [b"", b"\x00", b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
                b"%s%n", b"../../etc/passwd", b"#", b"+", b"$share/g/#", b"\x00" * 16]


def encode_varint(value):
    """Protobuf varint of a non-negative value below 2^64 (negatives as their 64-bit two's complement)."""
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def overlong_varint(value, size):
    """value in `size` bytes: non-minimal from size 2 on, invalid beyond 10."""
    out = bytearray()
    for i in range(size):
        out.append((value >> (7 * i)) & 0x7F | (0x80 if i < size - 1 else 0))
    return bytes(out)


def read_varint(data, pos):
    """(value, next position), or None when malformed or cut off."""
    value = 0
    for i in range(10):
        if pos + i >= len(data):
            return None
        byte = data[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value & ((1 << 64) - 1), pos + i + 1
    return None


def tag(number, wire_type):
    return encode_varint(number << 3 | wire_type)


class Field:
    """One field: varint fields hold an int, fixed ones their raw bytes, LEN ones their bytes and,
    when those parse as fields, `children` (the bytes are then written from the children)."""

    __slots__ = ("number", "wire_type", "value", "children")

    def __init__(self, number, wire_type, value, children=None):
        self.number, self.wire_type, self.value, self.children = number, wire_type, value, children


def parse(data, depth=0):
    """The fields of data, or None when data is not a clean sequence of fields (no groups)."""
    fields, pos = [], 0
    while pos < len(data):
        key = read_varint(data, pos)
        if key is None:
            return None
        number, wire_type, pos = key[0] >> 3, key[0] & 7, key[1]
        if number == 0 or number > MAX_FIELD:
            return None
        if wire_type == VARINT:
            value = read_varint(data, pos)
            if value is None:
                return None
            fields.append(Field(number, VARINT, value[0]))
            pos = value[1]
        elif wire_type in (I64, I32):
            size = 8 if wire_type == I64 else 4
            if pos + size > len(data):
                return None
            fields.append(Field(number, wire_type, bytes(data[pos:pos + size])))
            pos += size
        elif wire_type == LEN:
            length = read_varint(data, pos)
            if length is None or length[1] + length[0] > len(data):
                return None
            value = bytes(data[length[1]:length[1] + length[0]])
            children = parse(value, depth + 1) if depth < MAX_DEPTH and value else None
            fields.append(Field(number, LEN, value, children))
            pos = length[1] + length[0]
        else:
            return None
    return fields


def serialize(fields):
    out = bytearray()
    for f in fields:
        out += tag(f.number, f.wire_type)
        if f.wire_type == VARINT:
            out += encode_varint(f.value)
        elif f.wire_type == LEN:
            value = serialize(f.children) if f.children is not None else f.value
            out += encode_varint(len(value)) + value
        else:
            out += f.value
    return bytes(out)


def all_fields(fields, parent=None, out=None):
    """[(field, the list holding it)] over the whole tree."""
    out = [] if out is None else out
    for f in fields:
        out.append((f, fields))
        if f.children is not None:
            all_fields(f.children, f, out)
    return out


MAX_TREE_BYTES = 64 * 1024  # larger messages get the byte-level mutations only (time)


def tree_of(data):
    """(top-level fields, every field with its list), or None when data does not parse."""
    if len(data) > MAX_TREE_BYTES:
        return None
    fields = parse(data)
    if not fields:
        return None
    return fields, all_fields(fields)


def with_offsets(fields):
    """Serializes like serialize(), and gives each field's (start, length position, value start,
    end) by id(field): for the framing mutations that must point at the bytes."""
    offsets = {}
    data = write_with_offsets(fields, offsets)
    return data, offsets


def write_with_offsets(fields, offsets):
    data = bytearray()
    for f in fields:
        start = len(data)
        data += tag(f.number, f.wire_type)
        if f.wire_type == LEN:
            inner_offsets = {}
            inner = write_with_offsets(f.children, inner_offsets) if f.children is not None else f.value
            length_at = len(data)
            data += encode_varint(len(inner))
            value_start = len(data)
            for key, (a, b, c, d) in inner_offsets.items():
                offsets[key] = (a + value_start, b + value_start, c + value_start, d + value_start)
            data += inner
        else:
            length_at = value_start = len(data)
            data += encode_varint(f.value) if f.wire_type == VARINT else f.value
        offsets[id(f)] = (start, length_at, value_start, len(data))
    return bytes(data)


# --------------------------------------------------------------------------
# Mutations that keep the framing consistent: the tree is written again.


def junk_value(rng, wire_type):
    if wire_type == VARINT:
        return rng.choice(INTERESTING_U64) if rng.random() < 0.7 else rng.getrandbits(64)
    if wire_type == I64:
        return rng.randbytes(8)
    if wire_type == I32:
        return rng.randbytes(4)
    choice = rng.randrange(4)
    if choice == 0:
        return rng.choice(JUNK_STRINGS)
    if choice == 1:
        return rng.randbytes(rng.randint(0, 64))
    if choice == 2:
        return bytes([rng.randrange(256)]) * rng.choice([255, 4096, 65536])
    return "é".encode() * rng.randint(1, 100)


def mutate_pb_value(rng, data, seeds):
    """A field's value replaced: an interesting integer, a junk string, random bytes."""
    tree = tree_of(data)
    if not tree:
        return data
    fields, every = tree
    field, _ = rng.choice(every)
    field.value = junk_value(rng, field.wire_type)
    field.children = None
    return serialize(fields)


def mutate_pb_wire_type(rng, data, seeds):
    """A field sent with another wire type than its declaration's (6 and 7 do not exist)."""
    picked = pick_offsets(rng, data)
    if not picked:
        return data
    fields, field, out, (start, _, _, _) = picked
    new_type = rng.choice([t for t in (VARINT, I64, LEN, I32, 6, 7) if t != field.wire_type])
    if new_type in (6, 7):
        # Nothing a decoder could skip: the bytes after the tag stay as they were.
        return out[:start] + tag(field.number, new_type) + out[start + len(tag(field.number, field.wire_type)):]
    field.wire_type = new_type
    field.value = junk_value(rng, new_type)
    field.children = None
    return serialize(fields)


def mutate_pb_duplicate(rng, data, seeds):
    """A field repeated (a singular field twice: the last wins; a oneof switched; a list longer)."""
    tree = tree_of(data)
    if not tree:
        return data
    fields, every = tree
    field, holder = rng.choice(every)
    copies = rng.choice([1, 1, 2, 10, 100])
    at = holder.index(field)
    for _ in range(copies):
        holder.insert(at + 1, Field(field.number, field.wire_type, field.value, field.children))
    return serialize(fields)


def mutate_pb_delete(rng, data, seeds):
    tree = tree_of(data)
    if not tree:
        return data
    fields, every = tree
    field, holder = rng.choice(every)
    holder.remove(field)
    return serialize(fields)


def mutate_pb_unknown(rng, data, seeds):
    """Fields this protocol version does not know, of every wire type, anywhere in the tree."""
    tree = tree_of(data)
    if not tree:
        return data
    fields, every = tree
    _, holder = rng.choice(every)
    for _ in range(rng.randint(1, 4)):
        number = rng.choice([99, 1000, 19000, 19999, MAX_FIELD, rng.randint(21, MAX_FIELD)])
        wire_type = rng.choice([VARINT, I64, LEN, I32])
        holder.insert(rng.randint(0, len(holder)), Field(number, wire_type, junk_value(rng, wire_type)))
    return serialize(fields)


def mutate_pb_swap(rng, data, seeds):
    """Two fields of one message in the other order (fields may come in any order)."""
    tree = tree_of(data)
    if not tree:
        return data
    fields, every = tree
    _, holder = rng.choice(every)
    if len(holder) < 2:
        return data
    i, j = rng.sample(range(len(holder)), 2)
    holder[i], holder[j] = holder[j], holder[i]
    return serialize(fields)


def mutate_pb_graft(rng, data, seeds):
    """A field of another seed put inside a message of this one (a frame of one kind inside another)."""
    tree, other = tree_of(data), tree_of(rng.choice(seeds))
    if not tree or not other:
        return data
    fields, every = tree
    donor, _ = rng.choice(other[1])
    _, holder = rng.choice(every)
    holder.insert(rng.randint(0, len(holder)), donor)
    return serialize(fields)


def mutate_pb_concat(rng, data, seeds):
    """Two messages end to end: protobuf merges them (lists grow, singular fields are overwritten)."""
    return data + rng.choice(seeds)


# --------------------------------------------------------------------------
# Mutations of the framing itself: lengths and varints that do not match.


def pick_offsets(rng, data, wanted=None):
    tree = tree_of(data)
    if not tree:
        return None
    fields, every = tree
    candidates = [f for f, _ in every if wanted is None or f.wire_type == wanted]
    if not candidates:
        return None
    field = rng.choice(candidates)
    out, offsets = with_offsets(fields)
    return fields, field, out, offsets[id(field)]


def mutate_pb_giant_length(rng, data, seeds):
    """A length prefix announcing far more than the message holds (2 GiB, 2^64 - 1)."""
    picked = pick_offsets(rng, data, LEN)
    if not picked:
        return data
    _, _, out, (start, length_at, value_start, end) = picked
    return out[:length_at] + encode_varint(rng.choice(HUGE_LENGTHS)) + out[value_start:]


def mutate_pb_length_off(rng, data, seeds):
    """A length prefix a few bytes off: the field swallows its neighbour or ends inside itself."""
    picked = pick_offsets(rng, data, LEN)
    if not picked:
        return data
    _, _, out, (start, length_at, value_start, end) = picked
    length = max(0, end - value_start + rng.choice([-3, -2, -1, 1, 2, 3, 100]))
    return out[:length_at] + encode_varint(length) + out[value_start:]


def mutate_pb_overlong_varint(rng, data, seeds):
    """A tag or a varint value written in 10 bytes (legal), or 11 (never legal)."""
    picked = pick_offsets(rng, data)
    if not picked:
        return data
    _, field, out, (start, length_at, value_start, end) = picked
    if field.wire_type == VARINT and rng.random() < 0.5:
        return out[:value_start] + overlong_varint(field.value, rng.choice([10, 11])) + out[end:]
    tag_end = start + len(tag(field.number, field.wire_type))
    return out[:start] + overlong_varint(field.number << 3 | field.wire_type, rng.choice([5, 10, 11])) + out[tag_end:]


def mutate_pb_bad_tag(rng, data, seeds):
    """Field number 0, a group end without its start, a group that never ends."""
    at = rng.randint(0, len(data))
    choice = rng.randrange(4)
    if choice == 0:
        bad = b"\x00"                      # field 0, varint
    elif choice == 1:
        bad = tag(rng.randint(1, 30), EGROUP)
    elif choice == 2:
        bad = tag(rng.randint(1, 30), SGROUP) + tag(1, VARINT) + b"\x01"
    else:
        bad = tag(rng.randint(1, 30), rng.choice([6, 7]))
    return data[:at] + bad + data[at:]


def deep_groups(number, depth):
    return tag(number, SGROUP) * depth + tag(number, EGROUP) * depth


def deep_messages(number, depth):
    """`depth` length-delimited fields each holding the next one."""
    inner = b""
    for _ in range(depth):
        inner = tag(number, LEN) + encode_varint(len(inner)) + inner
    return inner


def mutate_pb_deep_nesting(rng, data, seeds):
    """Nesting far beyond the decoder's recursion limit (100): groups of an unknown field, or
    a nested message field holding itself again and again."""
    depth = rng.choice([99, 100, 101, 1000, 20000])
    number = rng.choice([1, 2, 7, 99, 5000])
    nest = deep_groups(number, depth) if rng.random() < 0.6 else deep_messages(number, min(depth, 3000))
    tree = tree_of(data)
    if tree and rng.random() < 0.5:
        fields, every = tree
        target, _ = rng.choice(every)
        if target.wire_type == LEN:
            # Inside a nested message, so that the depth adds to the message's own.
            out, offsets = with_offsets(fields)
            start, length_at, value_start, end = offsets[id(target)]
            inner = out[value_start:end] + nest
            return out[:length_at] + encode_varint(len(inner)) + inner + out[end:]
    at = rng.randint(0, len(data))
    return data[:at] + nest + data[at:]


PROTO_MUTATIONS = [
    (mutate_pb_value, 4), (mutate_pb_wire_type, 2), (mutate_pb_duplicate, 2), (mutate_pb_delete, 2),
    (mutate_pb_unknown, 2), (mutate_pb_swap, 1), (mutate_pb_graft, 2), (mutate_pb_concat, 1),
    (mutate_pb_giant_length, 2), (mutate_pb_length_off, 2), (mutate_pb_overlong_varint, 1),
    (mutate_pb_bad_tag, 1), (mutate_pb_deep_nesting, 1),
]
