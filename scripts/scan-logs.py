#!/usr/bin/env python3
"""Proves that no secret reached a log: scans every line of every log the test run kept
(server logs, the test output) for the secrets the tests used (secrets.txt) and for anything
shaped like an epr token, session, invitation code or password hash.

Usage: scan-logs.py DIR      (exit 1 when a secret is found)
       scan-logs.py --self-test
"""
import os
import re
import sys

PATTERNS = {
    "API token": re.compile(r"epr_[A-Za-z0-9_]{32,}"),
    "session cookie": re.compile(r"eprs_[A-Za-z0-9]{20,}"),
    "invitation code": re.compile(r"epri_[A-Za-z0-9]{20,}"),
    "bcrypt hash": re.compile(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{20,}"),
    "password field": re.compile(r'"(password|current|new|client_secret)"\s*:\s*"[^"]+'),
}


def scan_line(line, secrets):
    hits = [f"secret {s[:4]}..." for s in secrets if s in line]
    hits += [name for name, pattern in PATTERNS.items() if pattern.search(line)]
    return hits


def scan(directory):
    secrets_file = os.path.join(directory, "secrets.txt")
    secrets = set()
    if os.path.exists(secrets_file):
        with open(secrets_file, encoding="utf-8", errors="replace") as handle:
            secrets = {line.rstrip("\n") for line in handle if len(line.strip()) >= 8}
    files = lines = 0
    found = []
    for root, _, names in os.walk(directory):
        for name in sorted(names):
            if not name.endswith(".log"):
                continue
            files += 1
            path = os.path.join(root, name)
            with open(path, encoding="utf-8", errors="replace") as handle:
                for number, line in enumerate(handle, 1):
                    lines += 1
                    for hit in scan_line(line, secrets):
                        found.append(f"{path}:{number}: {hit}")
    print(f"log scan: {files} logs, {lines} lines, {len(secrets)} known secrets and {len(PATTERNS)} secret shapes checked")
    for hit in found:
        print("  " + hit)
    return 1 if found or files == 0 else 0


def self_test():
    secrets = {"correct horse battery staple"}
    assert scan_line('{"message":"signed in","password":"hunter2hunter2"}', set())
    assert scan_line("Authorization: Bearer epr_abcdefghijklmnopqrstuvwxyz0123456789ABCD", set())
    assert scan_line("cookie eprs_abcdefghijklmnopqrstuvwxyz", set())
    assert scan_line("hash $2b$12$abcdefghijklmnopqrstuvwxyz0123456", set())
    assert scan_line("user typed correct horse battery staple", secrets)
    assert not scan_line('{"message":"signin","actor":"alice","outcome":"denied"}', secrets)
    assert not scan_line("token tok_abcdefghij0123456789 revoked", secrets)
    print("log scan self-test: ok")
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "--self-test":
        sys.exit(self_test())
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    sys.exit(scan(sys.argv[1]))
