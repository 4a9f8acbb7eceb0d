#!/usr/bin/env python3
"""An epr external scanner: runs cppcheck over the C sources of an unpacked package and prints
its findings in epr's scanner format.

Configure it in the server's config file (and pass that file to `epr check --config`):

    [scanner.cppcheck]
    command = ["python3", "/path/to/scanners/cppcheck-scanner.py"]

epr runs the command with the package directory as its last argument. cppcheck's errors become
errors, its warnings warnings, and style, performance and portability remarks infos; each
finding's check id is cppcheck's id (epr prefixes it with `scanner.cppcheck.`).
"""
import json
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree

SEVERITIES = {"error": "error", "warning": "warning", "style": "info", "performance": "info", "portability": "info"}
SOURCE_SUFFIXES = (".c", ".h")
# What libbpf's headers define, for sources whose system headers cppcheck does not read.
LIBBPF_MACROS = """
#define SEC(name)
#define __uint(name, val) int (*name)[val]
#define __type(name, val) __typeof__(val) *name
#define __array(name, val) __typeof__(val) *name[]
#define __always_inline inline
#define __ksym
#define __kconfig
#define __weak
#define BPF_PROG(name, ...) name(unsigned long long *ctx)
"""
# Findings about cppcheck's own configuration, not about the package.
CONFIGURATION = {"unknownMacro", "missingInclude", "missingIncludeSystem", "preprocessorErrorDirective", "syntaxError",
                 "internalAstError", "checkersReport"}


def sources(root):
    found = []
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            if name.endswith(SOURCE_SUFFIXES) and not os.path.islink(path):
                found.append(path)
    return sorted(found)


def main():
    if len(sys.argv) < 2:
        print("usage: cppcheck-scanner.py PACKAGE_DIR", file=sys.stderr)
        return 2
    root = os.path.realpath(sys.argv[-1])
    files = sources(root)
    if not files:
        print(json.dumps({"findings": []}))
        return 0
    # BPF programs are built for the bpf target: tell cppcheck so, and keep it to the sources
    # themselves (system headers are not in the package).
    with tempfile.NamedTemporaryFile("w", suffix=".h") as macros:
        macros.write(LIBBPF_MACROS)
        macros.flush()
        command = ["cppcheck", "--xml", "--xml-version=2", "--quiet", "--enable=warning,style,performance,portability",
                   "--std=c11", "-D__BPF__", "-D__bpf__", "--include=" + macros.name] + files
        try:
            run = subprocess.run(command, capture_output=True, text=True, timeout=240)
        except FileNotFoundError:
            print("cppcheck is not installed", file=sys.stderr)
            return 3
    if run.returncode != 0:
        print(run.stderr[-2000:], file=sys.stderr)
        return 3
    findings = []
    for error in ElementTree.fromstring(run.stderr).iter("error"):
        severity = SEVERITIES.get(error.get("severity", ""))
        if severity is None:
            continue
        if error.get("id") in CONFIGURATION:
            severity = "info"
        location = None
        place = error.find("location")
        if place is not None:
            location = os.path.relpath(place.get("file", ""), root) + ":" + place.get("line", "0")
        findings.append({"severity": severity, "check": error.get("id", "cppcheck"),
                         "message": error.get("verbose") or error.get("msg", ""), "location": location})
    print(json.dumps({"findings": findings}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
