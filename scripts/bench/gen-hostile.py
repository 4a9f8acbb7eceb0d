#!/usr/bin/env python3
"""Writes hostile inputs for the parsers' worst-case benchmark (scripts/bench-hostile.sh).

Usage: gen-hostile.py KIND SCALE OUT
  links    an archive of SCALE groups of four symbolic links, each naming the one before it
           three times (every group follows 40 links, the most a path may): link resolution
  entries  an archive of SCALE empty files, ten to a directory: the reader's per-entry work
  bomb     an archive of one file of SCALE MiB of zeros (gzip expands it a thousand times):
           the expansion and ratio limits
  toml     a package whose epr.toml holds SCALE nested arrays: the manifest parser
  elf      a BPF object of SCALE program sections (one instruction each): the object inspector
"""
import gzip
import io
import struct
import sys
import tarfile
import zlib

EXAMPLE_TOML = """name = "hostile"
version = "1.0.0"
description = "A package made to cost its readers as much as it can."
license = "GPL-2.0-only"
platforms = ["any"]
"""


def tar_gz(out, add):
    with open(out, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as zipped:
            with tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar:
                add(tar)


def entry(tar, name, data=b"", kind=tarfile.REGTYPE, link=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def links(scale, out):
    def add(tar):
        entry(tar, "hostile/epr.toml", EXAMPLE_TOML.encode())
        entry(tar, "hostile/d", kind=tarfile.DIRTYPE)
        for group in range(scale):
            entry(tar, f"hostile/g{group}l0", kind=tarfile.SYMTYPE, link="d")
            for level in range(1, 4):
                previous = f"g{group}l{level - 1}"
                entry(tar, f"hostile/g{group}l{level}", kind=tarfile.SYMTYPE, link="/../".join([previous] * 3))
    tar_gz(out, add)


def entries(scale, out):
    def add(tar):
        entry(tar, "hostile/epr.toml", EXAMPLE_TOML.encode())
        for index in range(scale):
            entry(tar, f"hostile/data/d{index // 10}/f{index}")
    tar_gz(out, add)


def bomb(scale, out):
    # Written as a stream: the tar header, SCALE MiB of zeros, padding, the end blocks.
    info = tarfile.TarInfo("hostile/zeros")
    info.size = scale << 20
    header = info.tobuf(format=tarfile.PAX_FORMAT)
    with open(out, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as zipped:
            zipped.write(header)
            zeros = bytes(1 << 20)
            for _ in range(scale):
                zipped.write(zeros)
            zipped.write(bytes(1024))


def toml(scale, out):
    text = EXAMPLE_TOML + "keywords = " + "[" * scale + "]" * scale + "\n"
    def add(tar):
        entry(tar, "hostile/epr.toml", text.encode())
    tar_gz(out, add)


def elf(scale, out):
    # A relocatable little-endian ELF64 for EM_BPF: a null section, SCALE sections "xdp/pN" of
    # one `r0 = 0; exit` program each, a license section, and the section name table.
    exit_program = struct.pack("<BBhi", 0xB7, 0, 0, 0) + struct.pack("<BBhi", 0x95, 0, 0, 0)
    names = bytearray(b"\0")
    sections = []  # (name offset, type, flags, data)
    for index in range(scale):
        offset = len(names)
        names += f"xdp/p{index}".encode() + b"\0"
        sections.append((offset, 1, 0x6, exit_program))
    license_offset = len(names)
    names += b"license\0"
    sections.append((license_offset, 1, 0x3, b"GPL\0"))
    shstrtab_offset = len(names)
    names += b".shstrtab\0"
    sections.append((shstrtab_offset, 3, 0, bytes(names)))
    body = bytearray()
    placed = []
    header_size = 64
    for name, kind, flags, data in sections:
        placed.append((name, kind, flags, header_size + len(body), len(data)))
        body += data + bytes((-len(data)) % 8)
    section_table = header_size + len(body)
    count = len(placed) + 1
    header = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header += struct.pack("<HHIQQQIHHHHHH", 1, 247, 1, 0, 0, section_table, 0, 64, 0, 0, 64,
                          count if count < 0xFF00 else 0, count - 1 if count < 0xFF00 else 0xFFFF)
    table = bytearray(bytes(64))
    if count >= 0xFF00:
        table = bytearray(struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, count, count - 1, 0, 0, 0))
    for name, kind, flags, offset, size in placed:
        table += struct.pack("<IIQQQQIIQQ", name, kind, flags, 0, offset, size, 0, 0, 8, 0)
    with open(out, "wb") as handle:
        handle.write(header + body + table)


def main():
    kind, scale, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    {"links": links, "entries": entries, "bomb": bomb, "toml": toml, "elf": elf}[kind](scale, out)


if __name__ == "__main__":
    main()
