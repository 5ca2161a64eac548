"""st.py: a minimal safetensors reader/writer in pure Python + numpy.

Format: 8-byte little-endian u64 N, then N bytes of JSON header
  {"__metadata__": {str: str}, name: {"dtype": "F32", "shape": [...], "data_offsets": [b, e]}, ...}
then the data buffer; offsets are relative to the start of the data buffer.

read(path)  -> (dict name -> np.ndarray (float32 for F32), metadata dict)
write(path, tensors, metadata=None)   (arrays are stored as F32, little-endian, C order)
"""
import json
import struct

import numpy as np

_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
    "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?",
}


class FormatError(ValueError):
    pass


def read(path):
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise FormatError("%s: too short for a safetensors file" % path)
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise FormatError("%s: header length %d exceeds file size %d" % (path, n, len(blob)))
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FormatError("%s: bad JSON header: %s" % (path, e))
    if not isinstance(header, dict):
        raise FormatError("%s: header is not a JSON object" % path)
    data = memoryview(blob)[8 + n:]
    meta = header.pop("__metadata__", None) or {}
    out = {}
    for name, info in header.items():
        try:
            dtype, shape, (b, e) = info["dtype"], list(info["shape"]), info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise FormatError("%s: tensor %r: malformed entry %r" % (path, name, info))
        if dtype not in _DTYPES:
            raise FormatError("%s: tensor %r: unsupported dtype %r" % (path, name, dtype))
        dt = np.dtype(_DTYPES[dtype])
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if not (0 <= b <= e <= len(data)) or e - b != count * dt.itemsize:
            raise FormatError("%s: tensor %r: data_offsets %r do not fit shape %r dtype %s "
                              "(buffer %d bytes)" % (path, name, [b, e], shape, dtype, len(data)))
        arr = np.frombuffer(data[b:e], dtype=dt).reshape(shape).copy()
        if dtype == "F32":
            arr = arr.astype(np.float32)
        out[name] = arr
    return out, dict(meta)


def write(path, tensors, metadata=None):
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    chunks, off = [], 0
    for name in sorted(tensors):
        a = np.array(tensors[name], dtype="<f4", order="C")  # keeps 0-d shape []
        raw = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    hj = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((8 - len(hj) % 8) % 8)  # pad so the data buffer is 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for c in chunks:
            f.write(c)
