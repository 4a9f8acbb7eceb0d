// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp-port-filter: drop packets whose TCP or UDP destination port is listed
 * in pf_blocked_ports, and hand every other packet to the next program of an
 * L3AF XDP chain through the xdp_pf_next_prog program array.
 *
 * Frames may carry up to two VLAN tags (802.1Q / 802.1ad). IPv4 and IPv6
 * are parsed; IPv6 extension headers (hop-by-hop, routing, destination
 * options, fragment, AH) are skipped to reach the transport header. Packets
 * without a transport header (non-first fragments, other protocols,
 * truncated frames) are never dropped by this program.
 *
 * Only UAPI headers are used: the program reads packet bytes, not kernel
 * structures, so it needs no CO-RE relocations. It avoids the iphdr
 * bitfields so the same source also builds for big-endian BPF.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_VLAN_DEPTH 2
#define MAX_IPV6_EXT_HDRS 6
#define IPV4_FRAG_OFFSET 0x1fff
#define IPV6_FRAG_OFFSET 0xfff8

struct vlan_hdr {
	__be16 tci;
	__be16 encap_proto;
};

struct ipv6_frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;
	__be32 identification;
};

/* Blocked destination ports, key in host byte order. A non-zero value
 * blocks the port; a zero value keeps the entry but lets traffic through. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u8);
} pf_blocked_ports SEC(".maps");

enum {
	PF_DROPPED_PACKETS = 0,
	PF_DROPPED_BYTES = 1,
	PF_COUNTERS,
};

/* Index 0: packets dropped, index 1: bytes dropped (sum over CPUs). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PF_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} pf_drop_count SEC(".maps");

/* L3AF chaining: the orchestrator stores the next program of the chain at
 * index 0. Pinned by name so the orchestrator can find and update it. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} xdp_pf_next_prog SEC(".maps");

/* Returns the destination port in host byte order, or -1 when the packet
 * has no TCP or UDP header this program can see. */
static __always_inline int parse_dport(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	void *l3, *l4;
	__u16 proto;
	__u8 l4proto;

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
		__u32 ihl;

		if ((void *)(iph + 1) > data_end)
			return -1;
		ihl = (*(__u8 *)iph & 0x0f) * 4;
		if (ihl < sizeof(*iph))
			return -1;
		/* Later fragments carry no transport header. */
		if (iph->frag_off & bpf_htons(IPV4_FRAG_OFFSET))
			return -1;
		l4proto = iph->protocol;
		l4 = l3 + ihl;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6h = l3;

		if ((void *)(ip6h + 1) > data_end)
			return -1;
		l4proto = ip6h->nexthdr;
		l4 = ip6h + 1;

#pragma unroll
		for (int i = 0; i < MAX_IPV6_EXT_HDRS; i++) {
			struct ipv6_opt_hdr *opt = l4;
			struct ipv6_frag_hdr *frag = l4;

			if (l4proto == IPPROTO_HOPOPTS || l4proto == IPPROTO_ROUTING ||
			    l4proto == IPPROTO_DSTOPTS) {
				if ((void *)(opt + 1) > data_end)
					return -1;
				l4proto = opt->nexthdr;
				l4 += ((__u32)opt->hdrlen + 1) * 8;
			} else if (l4proto == IPPROTO_AH) {
				if ((void *)(opt + 1) > data_end)
					return -1;
				l4proto = opt->nexthdr;
				l4 += ((__u32)opt->hdrlen + 2) * 4;
			} else if (l4proto == IPPROTO_FRAGMENT) {
				if ((void *)(frag + 1) > data_end)
					return -1;
				if (frag->frag_off & bpf_htons(IPV6_FRAG_OFFSET))
					return -1;
				l4proto = frag->nexthdr;
				l4 = frag + 1;
			} else {
				break;
			}
		}
	} else {
		return -1;
	}

	if (l4proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end)
			return -1;
		return bpf_ntohs(th->dest);
	}
	if (l4proto == IPPROTO_UDP) {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > data_end)
			return -1;
		return bpf_ntohs(uh->dest);
	}
	return -1;
}

static __always_inline void count(__u32 index, __u64 amount)
{
	__u64 *value = bpf_map_lookup_elem(&pf_drop_count, &index);

	if (value)
		*value += amount; /* per-CPU slot: no atomics needed */
}

/* Kept out of line on purpose: a BPF-to-BPF call into .text. */
static __noinline int port_verdict(__u32 port, __u64 bytes)
{
	__u16 key = port;
	__u8 *blocked = bpf_map_lookup_elem(&pf_blocked_ports, &key);

	if (!blocked || !*blocked)
		return XDP_PASS;
	count(PF_DROPPED_PACKETS, 1);
	count(PF_DROPPED_BYTES, bytes);
	return XDP_DROP;
}

SEC("xdp")
int xdp_port_filter(struct xdp_md *ctx)
{
	__u64 bytes = ctx->data_end - ctx->data;
	int dport = parse_dport(ctx);

	if (dport >= 0 && port_verdict(dport, bytes) == XDP_DROP)
		return XDP_DROP;

	/* Run the next program of the chain; if there is none, pass. */
	bpf_tail_call(ctx, &xdp_pf_next_prog, 0);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
