# Draws Tandem's icon (two overlapping circles) as PNGs, ICO and ICNS with the standard library.
import struct, zlib, sys, os
out = sys.argv[1]
def png(size):
    rows = []
    for y in range(size):
        row = bytearray([0])
        for x in range(size):
            u, v = (x + 0.5) / size, (y + 0.5) / size
            def circle(cx, cy, r):
                d = ((u - cx) ** 2 + (v - cy) ** 2) ** 0.5
                return max(0.0, min(1.0, (r - d) * size + 0.5))
            a1 = circle(0.36, 0.5, 0.22)   # draft: amber
            a2 = circle(0.62, 0.5, 0.30)   # target: blue
            r, g, b, a = 0, 0, 0, 0.0
            if a1 > 0:
                r, g, b, a = 245, 159, 0, a1
            if a2 > 0:
                k = a2 * 0.9
                r = int(r * (1 - k) + 59 * k); g = int(g * (1 - k) + 91 * k); b = int(b * (1 - k) + 219 * k)
                a = max(a, a2 * 0.95)
            row += bytes([r, g, b, int(a * 255)])
        rows.append(bytes(row))
    raw = b''.join(rows)
    def chunk(t, d):
        return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    return b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', size, size, 8, 6, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b'')
files = {'32x32.png': 32, '128x128.png': 128, '128x128@2x.png': 256, 'icon.png': 512}
data = {}
for name, size in files.items():
    data[size] = png(size)
    open(os.path.join(out, name), 'wb').write(data[size])
# ICO with PNG entries (Vista+).
entries = [16, 32, 48, 256]
pngs = [data.get(s) or png(s) for s in entries]
header = struct.pack('<HHH', 0, 1, len(entries))
offset = 6 + 16 * len(entries)
dirs = b''
for s, p in zip(entries, pngs):
    dirs += struct.pack('<BBBBHHII', s % 256, s % 256, 0, 0, 1, 32, len(p), offset)
    offset += len(p)
open(os.path.join(out, 'icon.ico'), 'wb').write(header + dirs + b''.join(pngs))
# ICNS with ic08 (256) and ic09 (512) PNG entries.
body = b''
for tag, s in ((b'ic08', 256), (b'ic09', 512)):
    body += tag + struct.pack('>I', 8 + len(data[s])) + data[s]
open(os.path.join(out, 'icon.icns'), 'wb').write(b'icns' + struct.pack('>I', 8 + len(body)) + body)
