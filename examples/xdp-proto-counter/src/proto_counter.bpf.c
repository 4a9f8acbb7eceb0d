// SPDX-License-Identifier: BSD-2-Clause
/*
 * xdp-proto-counter: count the packets and bytes received per IP protocol
 * number (IPv4 protocol / IPv6 upper-layer next header, 0-255) and record
 * when each protocol was last seen. Every packet is passed on unchanged.
 *
 * The license is BSD-2-Clause, which the kernel does not treat as GPL
 * compatible, so only helpers that are not GPL-only are called:
 * bpf_map_lookup_elem, bpf_map_update_elem and bpf_ktime_get_ns.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_VLAN_DEPTH 2
#define MAX_IPV6_EXT_HDRS 4
#define PROTO_SLOTS 256

struct vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

/* Packets per protocol number, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PROTO_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} xpc_proto_pkts SEC(".maps");

/* Bytes (whole frames) per protocol number, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PROTO_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} xpc_proto_bytes SEC(".maps");

/* CLOCK_MONOTONIC time (ns) of the last packet of each protocol. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PROTO_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} xpc_last_seen SEC(".maps");

/* IP protocol number of the packet, or -1 when it is not IP. For IPv6 the
 * common extension headers are skipped to find the upper-layer protocol. */
static __always_inline int packet_protocol(void *data, void *data_end)
{
	struct ethhdr *eth = data;
	void *l3;
	__u16 proto;

	if ((void *)(eth + 1) > data_end)
		return -1;
	proto = eth->h_proto;
	l3 = eth + 1;

#pragma unroll
	for (int i = 0; i < MAX_VLAN_DEPTH; i++) {
		struct vlan_hdr *vh = l3;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if ((void *)(vh + 1) > data_end)
			return -1;
		proto = vh->encap_proto;
		l3 = vh + 1;
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *iph = l3;

		if ((void *)(iph + 1) > data_end)
			return -1;
		return iph->protocol;
	}
	if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6h = l3;
		struct ipv6_opt_hdr *opt;
		__u8 next;

		if ((void *)(ip6h + 1) > data_end)
			return -1;
		next = ip6h->nexthdr;
		opt = (void *)(ip6h + 1);
#pragma unroll
		for (int i = 0; i < MAX_IPV6_EXT_HDRS; i++) {
			if (next != IPPROTO_HOPOPTS && next != IPPROTO_ROUTING &&
			    next != IPPROTO_DSTOPTS)
				break;
			if ((void *)(opt + 1) > data_end)
				break; /* report the header we could not step over */
			next = opt->nexthdr;
			opt = (void *)opt + ((__u32)opt->hdrlen + 1) * 8;
		}
		return next;
	}
	return -1;
}

static __always_inline void add(void *map, __u32 slot, __u64 amount)
{
	__u64 *value = bpf_map_lookup_elem(map, &slot);

	if (value)
		*value += amount; /* per-CPU slot: no atomics needed */
}

SEC("xdp")
int xdp_proto_counter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	int proto = packet_protocol(data, data_end);
	__u64 now;
	__u32 slot;

	if (proto < 0)
		return XDP_PASS;
	slot = (__u32)proto & (PROTO_SLOTS - 1);
	add(&xpc_proto_pkts, slot, 1);
	add(&xpc_proto_bytes, slot, data_end - data);
	now = bpf_ktime_get_ns();
	bpf_map_update_elem(&xpc_last_seen, &slot, &now, BPF_ANY);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "BSD-2-Clause";
