#!/usr/bin/env python3
"""Writes tests/data/python_round.tsv: Python's round(x, t) for generated
values, the oracle of klepto's float rounding (`tol`). Run once and commit;
the Rust test that reads the table needs no Python.

Each line: the input's bits (16 hex digits), t, the output's bits, and both
values in repr for people. Values: short decimals (the cases where the
binary value lies just beside a decimal half: 0.35, 2.675, ...), exact
halves, random doubles of every magnitude, integers near powers of ten,
and edge cases. Seeded, so a rerun gives the same table.
"""
import math
import random
import struct
import sys

def bits(x):
    return struct.unpack("<Q", struct.pack("<d", x))[0]

rng = random.Random(0x6B6C6570)
cases = []

# Decimal literals with a 5 in the digit after the rounding place.
for _ in range(1500):
    t = rng.randint(0, 6)
    digits = rng.randint(t + 1, t + 3)
    n = rng.randint(0, 10 ** digits)
    # force a 5 right after the rounding place often
    s = str(n).rjust(digits + 1, "0")
    if rng.random() < 0.7:
        pos = len(s) - digits + t
        s = s[:pos] + "5" + s[pos + 1:]
    x = float(s[:-digits] + "." + s[-digits:])
    cases.append((x if rng.random() < 0.8 else -x, t))

# Exact binary halves.
for _ in range(300):
    t = rng.randint(0, 5)
    k = rng.randint(0, 2 ** 20)
    x = (2 * k + 1) / 2 ** (t + 1) if rng.random() < 0.5 else (2 * k + 1) / 2
    cases.append((x if rng.random() < 0.7 else -x, t))

# Random doubles: uniform, and log-uniform over the whole range.
for _ in range(800):
    t = rng.randint(-10, 20)
    x = rng.uniform(-1e6, 1e6)
    cases.append((x, t))
for _ in range(800):
    t = rng.randint(-330, 330)
    x = math.copysign(10 ** rng.uniform(-320, 308), rng.choice([-1, 1]))
    cases.append((x, t))

# Negative t on integers and ties (25 -> 20, 35 -> 40, 1250 -> 1200).
for _ in range(500):
    t = -rng.randint(1, 8)
    n = rng.randint(0, 10 ** 9)
    if rng.random() < 0.5:
        k = -t
        n = (n // 10 ** k) * 10 ** k + 5 * 10 ** (k - 1)
    x = float(n) + (0.0 if rng.random() < 0.7 else rng.random())
    cases.append((x if rng.random() < 0.8 else -x, t))

edge = [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
        0.5, 1.5, 2.5, -2.5, 0.35, 2.675, 0.015, 0.0025, 0.125, 0.375, 1e300, 1e22,
        1e23, 9007199254740993.0, 4503599627370495.5, 0.49999999999999994]
for x in edge:
    for t in (-309, -308, -20, -2, -1, 0, 1, 2, 3, 15, 16, 17, 22, 23, 300, 323, 324):
        cases.append((x, t))

out = sys.stdout if len(sys.argv) < 2 else open(sys.argv[1], "w")
out.write("# x_bits\tt\tround_bits\tx\tround(x, t)  (Python %s)\n" % sys.version.split()[0])
n = 0
for x, t in cases:
    try:
        r = round(x, t)
    except OverflowError:
        continue  # klepto keeps such values unchanged; Python raises
    out.write("%016x\t%d\t%016x\t%r\t%r\n" % (bits(x), t, bits(r), x, r))
    n += 1
print(n, "lines", file=sys.stderr)
