#!/usr/bin/env python3
"""Writes a C file whose BPF object is about 10 MiB: many XDP programs, each an unrolled chain
of map look-ups, so the object is mostly code, symbols, relocations and BTF."""
import sys

programs = int(sys.argv[1]) if len(sys.argv) > 1 else 110
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 200
out = ["// SPDX-License-Identifier: GPL-2.0-only",
       "#include <linux/bpf.h>",
       "#include <bpf/bpf_helpers.h>",
       "struct { __uint(type, BPF_MAP_TYPE_ARRAY); __type(key, __u32); __type(value, __u64); __uint(max_entries, 256); } bench_values SEC(\".maps\");",
       "struct { __uint(type, BPF_MAP_TYPE_PROG_ARRAY); __uint(key_size, 4); __uint(value_size, 4); __uint(max_entries, 1); } bench_next SEC(\".maps\");",
       "static __noinline __u64 bench_mix(__u64 x) { return (x * 2654435761u) ^ (x >> 7); }"]
for p in range(programs):
    out.append(f'SEC("xdp") int bench_prog_{p}(struct xdp_md *ctx) {{')
    out.append("  __u64 sum = 0; __u32 key;")
    for s in range(steps):
        out.append(f"  key = (ctx->ingress_ifindex + {s * 7 + p}) & 255;")
        out.append("  { __u64 *v = bpf_map_lookup_elem(&bench_values, &key); if (v) sum += *v ^ " + str(s) + "; }")
    out.append("  if (sum & 1) bpf_tail_call(ctx, &bench_next, 0);")
    out.append("  return bench_mix(sum) & 1 ? XDP_PASS : XDP_DROP;")
    out.append("}")
out.append('char LICENSE[] SEC("license") = "GPL";')
sys.stdout.write("\n".join(out) + "\n")
