"""COCO RLE masks as pycocotools stores them: areas, and compressed strings decoded in bulk.

A compressed RLE is ``{'size': [h, w], 'counts': str | bytes}``; its string lists run lengths
(background first) of the column-major mask. :func:`decode_rle_counts` and
:func:`rle_pixel_totals` read the strings with numpy, without building masks, so that strings
pycocotools would choke on can be refused first (:mod:`analysis.coco_format` does).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from pycocotools import mask as mask_utils

__all__ = ["rle_area", "decode_rle_counts", "rle_pixel_totals", "RLE_PROBLEMS"]

# pycocotools 2.0.11 mask.area() overflows on lists of 256 or more RLEs (uint8 counter).
_AREA_BATCH = 255


def rle_area(rles: Sequence[dict]) -> np.ndarray:
    """Mask areas of compressed RLEs, shape ``(len(rles),)`` float64, in pixels."""
    out = np.empty(len(rles), dtype=np.float64)
    for lo in range(0, len(rles), _AREA_BATCH):
        chunk = list(rles[lo:lo + _AREA_BATCH])
        if chunk:
            out[lo:lo + len(chunk)] = mask_utils.area(chunk)
    return out


# --- compressed RLE strings, checked without building masks -------------------------------
#
# Facts about pycocotools' format (maskApi.c rleToString / rleFrString): each run length is
# written as 5-bit groups, least significant first, one character chr(48 + c) per group; bit
# 0x20 of c says "more groups follow", bit 0x10 of the last group is the sign. From the fourth
# run on (index i > 2) the string holds the difference to run i - 2. The decoder trusts the
# string: runs that do not add up to height*width make its merge and IoU loops spin forever,
# and a string ending inside a run makes it read past the end.

# Most characters per run: 6 groups hold 30 bits, which pycocotools decodes without overflow
# (a 7th group is shifted by 30 bits inside a 32-bit int, and its sign by 35). Enough for any
# run or difference below 2**29 pixels, i.e. any image under 536 million pixels.
_MAX_RUN_CHARS = 6
#: What can be wrong with a compressed RLE string (:func:`decode_rle_counts`' problem codes).
RLE_PROBLEMS = {
    "": "",
    "empty": "compressed RLE 'counts' is empty",
    "alphabet": "compressed RLE 'counts' has characters outside the RLE alphabet "
                "(chr(48)..chr(111))",
    "truncated": "compressed RLE 'counts' ends inside a run (the string is cut short)",
    "long run": "compressed RLE 'counts' has a run of more than 6 characters (2**29 pixels "
                "or more), beyond what pycocotools decodes reliably",
}
_PROBLEM_CODE = {k: i for i, k in enumerate(RLE_PROBLEMS)}
# Characters decoded per numpy batch: bounds the temporary arrays (about 40 bytes a char).
_DECODE_BATCH = 1 << 20


def decode_rle_counts(strings: Sequence[str | bytes]) -> tuple[np.ndarray, np.ndarray,
                                                               np.ndarray]:
    """Run lengths of COCO compressed RLE strings as pycocotools decodes them, in bulk.

    Args:
        strings: ``counts`` strings (str or bytes) of compressed RLEs.

    Returns:
        ``(runs, offsets, problem)``. ``runs`` is uint32 (pycocotools stores run lengths as
        32-bit unsigned, so a "negative" run is a huge one here too): string ``k``'s runs are
        ``runs[offsets[k]:offsets[k + 1]]``, ``offsets`` being ``(len(strings) + 1,)`` int64.
        ``problem`` is ``(len(strings),)`` uint8: 0 for a well-formed string, else the index
        in :data:`RLE_PROBLEMS` of what is wrong with it; the runs of such a string mean
        nothing.
    """
    n = len(strings)
    problem = np.zeros(n, np.uint8)
    parts, n_runs = [], np.zeros(n, np.int64)
    for lo, hi, runs, per_str in _decoded_batches(strings, problem):
        parts.append(runs)
        n_runs[lo:hi] = per_str
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(n_runs, out=offsets[1:])
    return (np.concatenate(parts) if parts else np.zeros(0, np.uint32)), offsets, problem


def rle_pixel_totals(strings: Sequence[str | bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Pixels covered by each compressed RLE string (the sum of its runs), without masks.

    Returns:
        ``(totals, problem)``: ``(len(strings),)`` uint64 sums of the run lengths as
        pycocotools decodes them, and the ``problem`` codes of :func:`decode_rle_counts`.
        A string is safe to hand to pycocotools when its problem is 0 and its total is
        height*width of its mask.
    """
    n = len(strings)
    problem = np.zeros(n, np.uint8)
    totals = np.zeros(n, np.uint64)
    for lo, hi, runs, per_str in _decoded_batches(strings, problem):
        has = np.flatnonzero(per_str)
        if len(has):
            first = np.cumsum(per_str) - per_str
            totals[lo + has] = np.add.reduceat(runs, first[has], dtype=np.uint64)
    return totals, problem


def _decoded_batches(strings: Sequence[str | bytes], problem: np.ndarray):
    """Yield ``(lo, hi, runs, runs_per_string)`` for consecutive batches of ``strings`` of about
    :data:`_DECODE_BATCH` characters; fills ``problem`` in place."""
    n = len(strings)
    lengths = np.fromiter(map(len, strings), np.int64, count=n)
    ends = np.cumsum(lengths)
    lo = 0
    while lo < n:
        limit = (ends[lo - 1] if lo else 0) + _DECODE_BATCH
        hi = max(int(np.searchsorted(ends, limit, side="right")), lo + 1)
        runs, per_str = _decode_batch(strings[lo:hi], lengths[lo:hi], problem[lo:hi])
        yield lo, hi, runs, per_str
        lo = hi


def _decode_batch(strings: Sequence[str | bytes], lengths: np.ndarray,
                  problem: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decode one batch: ``(runs uint32, runs per string)``; fills ``problem`` (a view) in
    place. A few uint8 passes per character and a few passes per run: most runs are one
    character, so longer runs are handled apart."""
    n = len(strings)

    def mark(which: np.ndarray, why: str) -> None:
        """Record ``why`` for the strings ``which`` that have no problem yet."""
        which = which[problem[which] == 0]
        problem[which] = _PROBLEM_CODE[why]

    try:
        text = "".join(strings).encode("ascii")
    except (TypeError, UnicodeEncodeError):
        # bytes among them, or non-ASCII text (kept at one byte per character, outside the
        # alphabet).
        text = b"".join(s if isinstance(s, bytes) else s.encode("ascii") if s.isascii()
                        else b"\x00" * len(s) for s in strings)
    c = np.frombuffer(text, np.uint8) - np.uint8(48)   # chars below '0' wrap above 63
    str_end = np.cumsum(lengths)
    str_start = str_end - lengths
    nonempty = lengths > 0
    mark(np.flatnonzero(~nonempty), "empty")
    if len(c) == 0:
        return np.zeros(0, np.uint32), np.zeros(n, np.int64)
    if (c > 63).any():
        mark(np.unique(np.searchsorted(str_end, np.flatnonzero(c > 63), side="right")),
             "alphabet")
    last = str_end[nonempty] - 1
    mark(np.flatnonzero(nonempty)[c[last] >= 32], "truncated")

    # A run ends at a character without the 0x20 bit, and at every string's end (so that a
    # truncated string, already marked, does not run into the next one).
    run_end = c < 32
    run_end[last] = True
    end_char = c[run_end]
    # One-character runs: 5 bits, 0x10 the sign; uint32 as pycocotools stores runs (a
    # negative run wraps to a huge one).
    x = end_char.astype(np.uint32)
    x -= (x & 0x10) << 1
    cont = np.flatnonzero(~run_end)        # the other characters of longer runs
    # Every character before cont[i] is a run end or one of the i continuations before it.
    per_str = lengths - (np.searchsorted(cont, str_end) - np.searchsorted(cont, str_start))
    if len(cont):
        # Longer runs: 5-bit groups, least significant first, from the run's first character.
        is_first = np.empty(len(cont), bool)
        is_first[0] = True
        np.not_equal(cont[1:], cont[:-1] + 1, out=is_first[1:])   # after a run end
        g0 = np.flatnonzero(is_first)
        start = cont[g0]
        multi = start - g0                 # run index (runs before = chars - continuations)
        n_cont = np.diff(g0, append=len(cont))
        long_run = n_cont >= _MAX_RUN_CHARS
        if long_run.any():
            mark(np.unique(np.searchsorted(str_end, start[long_run], side="right")),
                 "long run")
            n_cont = np.minimum(n_cont, _MAX_RUN_CHARS - 1)
        value = (c[start] & 0x1f).astype(np.int64)
        for k in range(1, int(n_cont.max()) + 1):
            sel = np.flatnonzero(n_cont >= k) if k > 1 else slice(None)
            group = (c[start[sel] + k] & 0x1f).astype(np.int64) << (5 * k)
            if k > 1:
                value[sel] += group
            else:
                value += group
        sign = (c[start + n_cont] & 0x10) != 0
        value[sign] -= np.int64(1) << (5 * (n_cont[sign] + 1))
        x[multi] = value.astype(np.uint32)   # mod 2**32, as pycocotools stores it

    # Differences: run j > 2 of a string is x[j] + run[j - 2], i.e. (mod 2**32, as pycocotools'
    # uint32 runs) a running sum along its odd runs and along its even runs from run 2. One
    # running sum per parity of the global run index; per string, subtract the sum before the
    # string's chain and set run 0 back to x.
    first = np.cumsum(per_str) - per_str
    runs = np.empty_like(x)
    odd_first = (first & 1).astype(bool)
    for p in (0, 1):
        total = np.cumsum(x[p::2], dtype=np.uint32)
        same = odd_first == bool(p)        # the string's run 0 has global parity p
        n_p = (per_str + same) // 2
        # Chain base: the running sum just before the chain. For the parity of run 0 the chain
        # starts at run 2, so run 0 is part of the base.
        start_p = (first + ~same) // 2 + same
        before = np.zeros(len(total) + 1, np.uint32)
        before[1:] = total
        runs[p::2] = total - np.repeat(before[np.minimum(start_p, len(total))], n_p)
    has = per_str > 0
    runs[first[has]] = x[first[has]]
    return runs, per_str
