"""FarmHash Fingerprint64 in vectorised numpy: the hash behind ``tf.strings.to_hash_bucket_fast``.

``tf.strings.to_hash_bucket_fast(s, n) == fingerprint64(s) % n`` where ``fingerprint64`` is
``farmhash::Fingerprint64`` (= ``farmhashna::Hash64``) of the string's bytes. Computing it here
lets the dataset job hash categorical values without importing TensorFlow in every Beam worker,
while the serving graph keeps calling the TensorFlow op; ``tests/pipelines/test_transform.py``
checks the two agree bit for bit over strings of every length class (0-16, 17-32, 33-64, > 64).

All arithmetic is on uint64 arrays, which wrap modulo 2**64 exactly like the C++ original.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

K0 = np.uint64(0xC3A5C85C97CB3127)
K1 = np.uint64(0xB492B66FBE98F273)
K2 = np.uint64(0x9AE16A3B2F90404F)
_U = np.uint64


def _rot(v: np.ndarray, shift: int) -> np.ndarray:
    return (v >> _U(shift)) | (v << _U(64 - shift))


def _shift_mix(v: np.ndarray) -> np.ndarray:
    return v ^ (v >> _U(47))


def _hash_len16(u: np.ndarray, v: np.ndarray, mul: np.ndarray) -> np.ndarray:
    a = (u ^ v) * mul
    a ^= a >> _U(47)
    b = (v ^ a) * mul
    b ^= b >> _U(47)
    return b * mul


class _Bytes:
    """Strings as rows of a zero-padded byte matrix with little-endian loads at per-row offsets."""

    def __init__(self, data: np.ndarray, lengths: np.ndarray):
        self.data, self.lengths = data, lengths
        self.rows = np.arange(lengths.size)[:, None]

    def fetch64(self, offset: np.ndarray) -> np.ndarray:
        idx = np.asarray(offset, dtype=np.int64)[:, None] + np.arange(8)
        return np.ascontiguousarray(self.data[self.rows, idx]).view("<u8")[:, 0].astype(np.uint64)

    def fetch32(self, offset: np.ndarray) -> np.ndarray:
        idx = np.asarray(offset, dtype=np.int64)[:, None] + np.arange(4)
        return np.ascontiguousarray(self.data[self.rows, idx]).view("<u4")[:, 0].astype(np.uint64)

    def byte(self, offset: np.ndarray) -> np.ndarray:
        return self.data[self.rows[:, 0], np.asarray(offset, dtype=np.int64)].astype(np.uint64)


def _len0to16(s: _Bytes) -> np.ndarray:
    n = s.lengths.astype(np.uint64)
    out = np.full(n.size, K2, dtype=np.uint64)
    with np.errstate(over="ignore"):
        mul = K2 + n * _U(2)
        big = s.lengths >= 8
        if big.any():
            a = s.fetch64(np.zeros(n.size)) + K2
            b = s.fetch64(np.maximum(s.lengths - 8, 0))
            c = _rot(b, 37) * mul + a
            d = (_rot(a, 25) + b) * mul
            out = np.where(big, _hash_len16(c, d, mul), out)
        mid = (s.lengths >= 4) & ~big
        if mid.any():
            a = s.fetch32(np.zeros(n.size))
            last = s.fetch32(np.maximum(s.lengths - 4, 0))
            out = np.where(mid, _hash_len16(n + (a << _U(3)), last, mul), out)
        small = (s.lengths > 0) & (s.lengths < 4)
        if small.any():
            a = s.byte(np.zeros(n.size))
            b = s.byte(s.lengths >> 1)
            c = s.byte(np.maximum(s.lengths - 1, 0))
            y = (a + (b << _U(8))) & _U(0xFFFFFFFF)
            z = (n + (c << _U(2))) & _U(0xFFFFFFFF)
            out = np.where(small, _shift_mix(y * K2 ^ z * K0) * K2, out)
    return out


def _len17to32(s: _Bytes) -> np.ndarray:
    n = s.lengths.astype(np.uint64)
    with np.errstate(over="ignore"):
        mul = K2 + n * _U(2)
        a = s.fetch64(np.zeros(n.size)) * K1
        b = s.fetch64(np.full(n.size, 8))
        c = s.fetch64(s.lengths - 8) * mul
        d = s.fetch64(s.lengths - 16) * K2
        return _hash_len16(_rot(a + b, 43) + _rot(c, 30) + d, a + _rot(b + K2, 18) + c, mul)


def _len33to64(s: _Bytes) -> np.ndarray:
    n = s.lengths.astype(np.uint64)
    with np.errstate(over="ignore"):
        mul = K2 + n * _U(2)
        a = s.fetch64(np.zeros(n.size)) * K2
        b = s.fetch64(np.full(n.size, 8))
        c = s.fetch64(s.lengths - 8) * mul
        d = s.fetch64(s.lengths - 16) * K2
        y = _rot(a + b, 43) + _rot(c, 30) + d
        z = _hash_len16(y, a + _rot(b + K2, 18) + c, mul)
        e = s.fetch64(np.full(n.size, 16)) * mul
        f = s.fetch64(np.full(n.size, 24))
        g = (y + s.fetch64(s.lengths - 32)) * mul
        h = (z + s.fetch64(s.lengths - 24)) * mul
        return _hash_len16(_rot(e + f, 43) + _rot(g, 30) + h, e + _rot(f + a, 18) + g, mul)


def _weak32(s: _Bytes, at: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    w, x, y, z = (s.fetch64(at + k) for k in (0, 8, 16, 24))
    a = a + w
    b = _rot(b + a + z, 21)
    c = a
    a = a + x + y
    b = b + _rot(a, 44)
    return a + z, b + c


def _len65plus(s: _Bytes) -> np.ndarray:
    n = s.lengths.size
    length = s.lengths.astype(np.int64)
    seed = _U(81)
    with np.errstate(over="ignore"):
        x = np.full(n, seed, dtype=np.uint64)
        y = np.full(n, seed * K1 + _U(113), dtype=np.uint64)
        z = _shift_mix(y * K2 + _U(113)) * K2
        v1, v2, w1, w2 = (np.zeros(n, dtype=np.uint64) for _ in range(4))
        x = x * K2 + s.fetch64(np.zeros(n))
        iterations = (length - 1) // 64
        pos = np.zeros(n, dtype=np.int64)
        for i in range(int(iterations.max())):
            live = i < iterations
            nx = _rot(x + y + v1 + s.fetch64(pos + 8), 37) * K1
            ny = _rot(y + v2 + s.fetch64(pos + 48), 42) * K1
            nx ^= w2
            ny += v1 + s.fetch64(pos + 40)
            nz = _rot(z + w1, 33) * K1
            nv1, nv2 = _weak32(s, pos, v2 * K1, nx + w1)
            nw1, nw2 = _weak32(s, pos + 32, nz + w2, ny + s.fetch64(pos + 16))
            nx, nz = nz, nx
            x, y, z = np.where(live, nx, x), np.where(live, ny, y), np.where(live, nz, z)
            v1, v2 = np.where(live, nv1, v1), np.where(live, nv2, v2)
            w1, w2 = np.where(live, nw1, w1), np.where(live, nw2, w2)
            pos = np.where(live, pos + 64, pos)
        mul = K1 + ((z & _U(0xFF)) << _U(1))
        last = length - 64
        w1 = w1 + ((length - 1) & 63).astype(np.uint64)
        v1 = v1 + w1
        w1 = w1 + v1
        x = _rot(x + y + v1 + s.fetch64(last + 8), 37) * mul
        y = _rot(y + v2 + s.fetch64(last + 48), 42) * mul
        x ^= w2 * _U(9)
        y += v1 * _U(9) + s.fetch64(last + 40)
        z = _rot(z + w1, 33) * mul
        v1, v2 = _weak32(s, last, v2 * mul, x + w1)
        w1, w2 = _weak32(s, last + 32, z + w2, y + s.fetch64(last + 16))
        x, z = z, x
        return _hash_len16(_hash_len16(v1, w1, mul) + _shift_mix(y) * K0 + z, _hash_len16(v2, w2, mul) + x, mul)


def fingerprint64(strings: pa.Array) -> np.ndarray:
    """``farmhash::Fingerprint64`` of each UTF-8 string of a null-free pyarrow string array."""
    if isinstance(strings, pa.ChunkedArray):
        strings = strings.combine_chunks()
    if not pa.types.is_string(strings.type):
        strings = strings.cast(pa.string())
    n = len(strings)
    out = np.zeros(n, dtype=np.uint64)
    if n == 0:
        return out
    offsets = np.frombuffer(strings.buffers()[1], dtype=np.int32)[strings.offset:strings.offset + n + 1].astype(np.int64)
    raw = strings.buffers()[2]
    data = np.frombuffer(raw, dtype=np.uint8) if raw is not None else np.zeros(0, np.uint8)
    lengths = np.diff(offsets)
    for lo, hi, fn in ((0, 16, _len0to16), (17, 32, _len17to32), (33, 64, _len33to64), (65, None, _len65plus)):
        sel = np.flatnonzero((lengths >= lo) & ((lengths <= hi) if hi is not None else True))
        if sel.size == 0:
            continue
        width = int(lengths[sel].max()) + 8
        matrix = np.zeros((sel.size, width), dtype=np.uint8)
        present = np.arange(width)[None, :] < lengths[sel][:, None]
        starts = offsets[sel]
        idx = starts[:, None] + np.arange(width)[None, :]
        matrix[present] = data[idx[present]]
        out[sel] = fn(_Bytes(matrix, lengths[sel]))
    return out


def hash_buckets(strings: pa.Array, num_buckets: int) -> np.ndarray:
    """``tf.strings.to_hash_bucket_fast(strings, num_buckets)`` as int64."""
    return (fingerprint64(strings) % np.uint64(num_buckets)).astype(np.int64)
