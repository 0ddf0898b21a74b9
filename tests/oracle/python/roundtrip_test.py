#!/usr/bin/env python3
"""Case files between dsa-oracle and the Python `safetensors` package, both directions.

usage: roundtrip_test.py PATH/TO/case_file_tool

1. numpy arrays saved by safetensors.numpy.save_file (with metadata) are read by dsa-oracle
   byte-exact, written back by dsa-oracle, and load again in Python unchanged.
2. The canonical case (bf16, fp8 e4m3/e5m2, f16, f32, f64, i32, i64, bool, scalar, empty),
   serialized by the safetensors package, passes dsa-oracle's value check; dsa-oracle's copy of it
   deserializes in Python to the same tensors and metadata.
3. The canonical case written by dsa-oracle deserializes in Python to the same tensors and
   metadata; re-serialized by Python, it passes dsa-oracle's value check again.
4. Malformed files that the safetensors package rejects are rejected by dsa-oracle too.

Exit 0 on success, 1 on a failure, 77 (SKIPPED) when numpy or safetensors cannot be imported
(1 instead when DSA_REQUIRE_PYTHON=1, so that CI cannot pass with the round trip skipped).
The canonical values mirror canonical_case() in tests/oracle/case_file_tool.cpp.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

SKIP = 77

# safetensors header dtype -> the dtype name the package's serializer takes.
SERIALIZE_NAMES = {
    "BOOL": "bool", "U8": "uint8", "I8": "int8", "I16": "int16", "U16": "uint16",
    "F16": "float16", "BF16": "bfloat16", "I32": "int32", "U32": "uint32", "F32": "float32",
    "I64": "int64", "U64": "uint64", "F64": "float64",
    "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
}
NUMPY_DTYPES = {
    "bool": "BOOL", "uint8": "U8", "int8": "I8", "int16": "I16", "uint16": "U16",
    "float16": "F16", "int32": "I32", "uint32": "U32", "float32": "F32",
    "int64": "I64", "uint64": "U64", "float64": "F64",
}


def canonical_params():
    return {"op": "roundtrip", "seed": 7, "shape": {"B": 2, "H": 3}, "profile": "flashmla"}


def canonical(np):
    """name -> (dtype, shape, bytes), and metadata: the case of case_file_tool.cpp."""
    le = lambda a: a.astype(a.dtype.newbyteorder("<")).tobytes()
    i = lambda n: np.arange(n, dtype=np.int64)
    kv = ((i(24) * 1013 + 7) & 0xFFFF).astype(np.uint16)
    kv[0], kv[1] = 0x7FC0, 0xFF80
    tensors = {
        "q": ("F32", [2, 3, 4], le(i(24).astype(np.float32) * np.float32(0.25) - np.float32(3.0))),
        "kv": ("BF16", [3, 8], le(kv)),
        "kv_fp8": ("F8_E4M3", [5, 7], le(((i(35) * 37 + 11) & 0xFF).astype(np.uint8))),
        "e5m2": ("F8_E5M2", [3], le((0x3C + i(3)).astype(np.uint8))),
        "indices": ("I32", [2, 5], le((i(10) * 7919 - 20000).astype(np.int32))),
        "lens": ("I64", [2], le(i(2) * (1 << 40) + 3)),
        "scale": ("F64", [], le(np.array(1.0 / 3.0, dtype=np.float64))),
        "mask": ("BOOL", [6], le((i(6) % 3 == 0).astype(np.uint8))),
        "half": ("F16", [4], le(np.array([0x3C00, 0xC000, 0x7BFF, 0x0001], dtype=np.uint16))),
        "empty": ("U8", [0, 3], b""),
    }
    metadata = {"dsa": json.dumps(canonical_params()), "note": "caf\u00e9 \u2713"}
    return tensors, metadata


def st_serialize(np, safetensors, tensors, metadata):
    """Serialize raw tensors (any dtype, bf16 and fp8 included) with the safetensors package."""
    if hasattr(safetensors, "TensorSpec"):  # safetensors >= 0.8: raw pointers
        keep, specs = [], {}
        for name, (dtype, shape, data) in tensors.items():
            buf = np.frombuffer(bytes(data) or b"\0", dtype=np.uint8).copy()
            keep.append(buf)
            specs[name] = safetensors.TensorSpec(dtype=SERIALIZE_NAMES[dtype], shape=list(shape),
                                                 data_ptr=buf.ctypes.data, data_len=len(data))
        out = bytes(safetensors.serialize(specs, metadata=metadata))
        del keep
        return out
    return bytes(safetensors.serialize(  # older releases: dicts holding bytes
        {name: {"dtype": SERIALIZE_NAMES[d], "shape": list(s), "data": bytes(b)}
         for name, (d, s, b) in tensors.items()}, metadata=metadata))


def st_deserialize(safetensors, path):
    """name -> (dtype, shape, bytes) and metadata, both read by the safetensors package."""
    with open(path, "rb") as f:
        data = f.read()
    tensors = {name: (t["dtype"], list(t["shape"]), bytes(t["data"]))
               for name, t in safetensors.deserialize(data)}
    with safetensors.safe_open(path, framework="numpy") as f:
        metadata = f.metadata() or {}
    return tensors, metadata


def run(tool, *args, expect=0):
    r = subprocess.run([tool, *args], capture_output=True, text=True)
    if r.returncode != expect:
        raise AssertionError(f"{os.path.basename(tool)} {' '.join(args)}: exit {r.returncode} "
                             f"(expected {expect})\n{r.stdout}{r.stderr}")
    return r.stdout


def same(what, got, want):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, expected {want!r}")


def same_tensors(what, got, want):
    same(what + ": tensor names", sorted(got), sorted(want))
    for name in want:
        same(f"{what}: tensor '{name}'", got[name], want[name])


def numpy_case(np):
    return {
        "f32": np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4),
        "f64": np.array([np.pi, -np.e, np.inf, 0.0], dtype=np.float64),
        "f16": np.array([1.5, -0.0, 65504], dtype=np.float16),
        "i8": np.array([-128, 0, 127], dtype=np.int8),
        "i32": np.arange(-6, 6, dtype=np.int32).reshape(2, 2, 3),
        "i64": np.array([-(1 << 62), 1 << 62], dtype=np.int64),
        "u8": np.arange(256, dtype=np.uint8),
        "bf16_as_u16": np.array([0x3F80, 0x7FC0, 0xFF80, 0x0001], dtype=np.uint16),
        "fp8_as_u8": np.array([0x00, 0x7F, 0x80, 0xFE], dtype=np.uint8),
        "flags": np.array([True, False, True]),
        "scalar": np.array(42, dtype=np.int32),
        "empty": np.zeros((0, 4), dtype=np.float32),
    }


def step_numpy(np, safetensors, tool, tmp):
    from safetensors.numpy import load_file, save_file
    arrays = numpy_case(np)
    metadata = {"dsa": json.dumps({"op": "numpy_case", "seed": 1}), "k": "v"}
    src, dst = os.path.join(tmp, "numpy.safetensors"), os.path.join(tmp, "numpy_copy.safetensors")
    save_file(arrays, src, metadata=metadata)
    shown = json.loads(run(tool, "show", src))
    same("numpy -> dsa-oracle: metadata", shown["metadata"], metadata)
    same("numpy -> dsa-oracle: tensor names", sorted(shown["tensors"]), sorted(arrays))
    for name, a in arrays.items():
        t = shown["tensors"][name]
        same(f"numpy -> dsa-oracle: '{name}' dtype", t["dtype"], NUMPY_DTYPES[a.dtype.name])
        same(f"numpy -> dsa-oracle: '{name}' shape", t["shape"], list(a.shape))
        same(f"numpy -> dsa-oracle: '{name}' bytes", t["hex"], a.astype(a.dtype.newbyteorder("<")).tobytes().hex())
    run(tool, "copy", src, dst)
    back = load_file(dst)
    same("numpy -> dsa-oracle -> numpy: names", sorted(back), sorted(arrays))
    for name, a in arrays.items():
        b = back[name]
        same(f"numpy -> dsa-oracle -> numpy: '{name}'", (b.dtype, b.shape, b.tobytes()), (a.dtype, a.shape, a.tobytes()))
    same("numpy -> dsa-oracle -> numpy: metadata", st_deserialize(safetensors, dst)[1], metadata)
    print(f"ok: {len(arrays)} numpy tensors + metadata: safetensors.numpy -> dsa-oracle -> safetensors.numpy")


def step_python_first(np, safetensors, tool, tmp):
    tensors, metadata = canonical(np)
    src, dst = os.path.join(tmp, "py.safetensors"), os.path.join(tmp, "py_copy.safetensors")
    with open(src, "wb") as f:
        f.write(st_serialize(np, safetensors, tensors, metadata))
    run(tool, "check", src)
    run(tool, "copy", src, dst)
    got_t, got_m = st_deserialize(safetensors, dst)
    same_tensors("python -> dsa-oracle -> python", got_t, tensors)
    same("python -> dsa-oracle -> python: metadata", got_m, metadata)
    print(f"ok: canonical case ({len(tensors)} tensors, bf16/fp8 included): python -> dsa-oracle -> python")


def step_oracle_first(np, safetensors, tool, tmp):
    tensors, metadata = canonical(np)
    made, again = os.path.join(tmp, "made.safetensors"), os.path.join(tmp, "made_py.safetensors")
    run(tool, "make", made)
    got_t, got_m = st_deserialize(safetensors, made)
    same_tensors("dsa-oracle -> python", got_t, tensors)
    same("dsa-oracle -> python: metadata keys", sorted(got_m), sorted(metadata))
    same("dsa-oracle -> python: parameters", json.loads(got_m["dsa"]), canonical_params())
    same("dsa-oracle -> python: note", got_m["note"], metadata["note"])
    with open(again, "wb") as f:
        f.write(st_serialize(np, safetensors, got_t, got_m))
    run(tool, "check", again)
    print(f"ok: canonical case: dsa-oracle -> python -> dsa-oracle")


def image(header, data=b"", declared=None):
    h = header.encode() if isinstance(header, str) else header
    return struct.pack("<Q", len(h) if declared is None else declared) + h + data


MALFORMED = {
    "truncated": b"\x08\x00\x00",
    "header_beyond_file": image("{}", declared=3),
    "header_not_json": image('{"a":'),
    "header_not_object": image("[1,2]"),
    "bad_dtype": image('{"a":{"dtype":"X9","shape":[1],"data_offsets":[0,1]}}', b"\0"),
    "outside_buffer": image('{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}', b"\0" * 3),
    "overlap": image('{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},'
                     '"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}', b"\0" * 3),
    "hole": image('{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', b"\0" * 2),
    "hole_at_end": image('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"\0" * 2),
    "size_mismatch": image('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}', b"\0" * 4),
    "overflow": image('{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}'),
    "negative_dim": image('{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}'),
    "metadata_not_string": image('{"__metadata__":{"seed":5}}'),
    "missing_field": image('{"a":{"dtype":"U8","shape":[1]}}', b"\0"),
}


def step_malformed(safetensors, tool, tmp):
    for name, data in MALFORMED.items():
        try:
            safetensors.deserialize(data)
            python_rejects = False
        except Exception:  # the package raises SafetensorError (or a parse error of its own)
            python_rejects = True
        if not python_rejects:
            raise AssertionError(f"malformed '{name}': the safetensors package accepted it")
        path = os.path.join(tmp, f"bad_{name}.safetensors")
        with open(path, "wb") as f:
            f.write(data)
        run(tool, "reject", path)
    print(f"ok: {len(MALFORMED)} malformed files rejected by both the safetensors package and dsa-oracle")


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    tool = sys.argv[1]
    try:
        import numpy as np
        import safetensors
        import safetensors.numpy  # noqa: F401
    except ImportError as e:
        print(f"SKIPPED: {sys.executable} cannot import numpy and safetensors ({e}); "
              f"install them with: apt-get install python3-numpy && {sys.executable} -m pip "
              f"install safetensors (Debian's own python3 needs --break-system-packages); "
              f"or configure with -DDSA_PYTHON=<an interpreter that has both>")
        return 1 if os.environ.get("DSA_REQUIRE_PYTHON") == "1" else SKIP
    print(f"python {sys.version.split()[0]} at {sys.executable}, numpy {np.__version__}, "
          f"safetensors {safetensors.__version__}")
    with tempfile.TemporaryDirectory(prefix="dsa_roundtrip_") as tmp:
        try:
            step_numpy(np, safetensors, tool, tmp)
            step_python_first(np, safetensors, tool, tmp)
            step_oracle_first(np, safetensors, tool, tmp)
            step_malformed(safetensors, tool, tmp)
        except AssertionError as e:
            print(f"FAILED: {e}")
            return 1
    print("PASSED: case files round-trip between dsa-oracle and the safetensors package")
    return 0


if __name__ == "__main__":
    sys.exit(main())
