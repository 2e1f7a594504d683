"""Independent reader of TensorBoard event files, for tests: plain Python (struct), written from the
TFRecord and protobuf wire-format specifications, not from grpoflow's encoder. Checks both masked
CRC32Cs of every record and prints the decoded events as JSON.

    python3 read_tfevents.py FILE            # our own decoding
    python3 read_tfevents.py --tensorboard FILE   # TensorBoard's EventFileLoader (needs tensorboard)
"""
import json
import struct
import sys


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def masked(data):
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def read_varint(buf, pos):
    shift = value = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def fields(buf):
    """(field number, wire type, value) for each field of a protobuf message."""
    pos = 0
    while pos < len(buf):
        key, pos = read_varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(buf, pos)
        elif wire == 1:
            value = buf[pos:pos + 8]
            pos += 8
        elif wire == 2:
            length, pos = read_varint(buf, pos)
            value = buf[pos:pos + length]
            pos += length
        elif wire == 5:
            value = buf[pos:pos + 4]
            pos += 4
        else:
            raise ValueError("unsupported wire type %d" % wire)
        yield field, wire, value


def decode_event(buf):
    event = {}
    for field, wire, value in fields(buf):
        if field == 1 and wire == 1:
            event["wall_time"] = struct.unpack("<d", value)[0]
        elif field == 2 and wire == 0:
            event["step"] = value - (1 << 64) if value >= 1 << 63 else value
        elif field == 3 and wire == 2:
            event["file_version"] = value.decode("utf-8")
        elif field == 5 and wire == 2:
            scalars = {}
            for vfield, vwire, vvalue in fields(value):
                assert vfield == 1 and vwire == 2, "Summary has only `value` entries"
                tag, simple = None, None
                for f, w, v in fields(vvalue):
                    if f == 1 and w == 2:
                        tag = v.decode("utf-8")
                    elif f == 2 and w == 5:
                        simple = struct.unpack("<f", v)[0]
                scalars[tag] = repr(simple)
            event["scalars"] = scalars
        else:
            raise ValueError("unexpected Event field %d (wire %d)" % (field, wire))
    return event


def read_records(path):
    with open(path, "rb") as f:
        data = f.read()
    pos, events = 0, []
    while pos < len(data):
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        if length_crc != masked(header):
            raise ValueError("record at byte %d: bad length CRC" % pos)
        body = data[pos + 12:pos + 12 + length]
        (body_crc,) = struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])
        if body_crc != masked(body):
            raise ValueError("record at byte %d: bad data CRC" % pos)
        events.append(decode_event(body))
        pos += 16 + length
    return events


def read_with_tensorboard(path):
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    events = []
    for e in EventFileLoader(path).Load():
        event = {"wall_time": e.wall_time, "step": e.step}
        if e.HasField("file_version"):
            event["file_version"] = e.file_version
        if e.HasField("summary"):
            # The loader turns simple_value into a scalar tensor (data-compat migration).
            event["scalars"] = {v.tag: repr(float(v.tensor.float_val[0]) if v.HasField("tensor") else v.simple_value) for v in e.summary.value}
        events.append(event)
    return events


if __name__ == "__main__":
    if sys.argv[1] == "--tensorboard":
        print(json.dumps(read_with_tensorboard(sys.argv[2])))
    else:
        print(json.dumps(read_records(sys.argv[1])))
