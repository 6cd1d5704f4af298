"""The client side of WebSocket (RFC 6455) for the fuzzers: the Upgrade request and
its answer, masked frames out, the server's frames back."""

import base64
import hashlib
import socket
import struct
import time

WS_PATH = "/mqtt"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def mask_bytes(data, key):
    if not data:
        return b""
    repeated = (key * (len(data) // 4 + 1))[:len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")).to_bytes(len(data), "big")


def encode_frame(frame):
    """Bytes of a client frame dict: fin, rsv, opcode, masked, key, payload, length, length_form."""
    length = frame.get("length", len(frame["payload"]))
    form = frame.get("length_form") or (0 if length < 126 else 126 if length < 65536 else 127)
    first = (0x80 if frame["fin"] else 0) | frame.get("rsv", 0) << 4 | frame["opcode"]
    mask_bit = 0x80 if frame["masked"] else 0
    if form == 0:
        header = bytes([first, mask_bit | length])
    elif form == 126:
        header = bytes([first, mask_bit | 126]) + struct.pack(">H", length & 0xFFFF)
    else:
        header = bytes([first, mask_bit | 127]) + struct.pack(">Q", length & (2**64 - 1))
    if not frame["masked"]:
        return header + frame["payload"]
    return header + frame["key"] + mask_bytes(frame["payload"], frame["key"])


def upgrade_request(key, subprotocol="mqtt", path=WS_PATH):
    lines = [f"GET {path} HTTP/1.1", "Host: localhost", "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    if subprotocol is not None:
        lines.append(f"Sec-WebSocket-Protocol: {subprotocol}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def accept_key(key):
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def recv_until_header_end(sock, deadline, idle):
    """The HTTP response head (bytes up to and with CRLFCRLF), or what came before the peer stopped."""
    data = b""
    while b"\r\n\r\n" not in data and time.monotonic() < deadline:
        sock.settimeout(max(0.001, min(idle, deadline - time.monotonic())))
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            break
        if not chunk:
            break
        data += chunk
    return data


def check_upgrade_response(head, key):
    """None if this is a correct 101 for key; else why not (a non-101 status is 'refused')."""
    lines = head.split(b"\r\n")
    if not lines[0].startswith(b"HTTP/1.1 101"):
        return "refused"
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if headers.get(b"sec-websocket-accept", b"").decode(errors="replace") != accept_key(key):
        return "wrong Sec-WebSocket-Accept"
    if headers.get(b"sec-websocket-protocol") != b"mqtt":
        return "subprotocol mqtt not echoed"
    return None


def server_close_frame(buffer, pos):
    """(saw a close frame, next frame position) over the unmasked server frames from pos."""
    while pos + 2 <= len(buffer):
        opcode, length, header = buffer[pos] & 0x0F, buffer[pos + 1] & 0x7F, 2
        if length == 126:
            if pos + 4 > len(buffer):
                break
            length, header = struct.unpack(">H", buffer[pos + 2:pos + 4])[0], 4
        elif length == 127:
            if pos + 10 > len(buffer):
                break
            length, header = struct.unpack(">Q", buffer[pos + 2:pos + 10])[0], 10
        if opcode == 0x8:
            return True, pos
        if pos + header + length > len(buffer):
            break
        pos += header + length
    return False, pos

