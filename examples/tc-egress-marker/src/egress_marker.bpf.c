// SPDX-License-Identifier: GPL-2.0-only
/*
 * tc-egress-marker: rewrite the DSCP of outgoing packets by destination
 * port. tcm_dscp_by_port maps a TCP/UDP destination port (host byte order)
 * to a DSCP value (0-63). IPv4 packets whose port is listed get that DSCP,
 * the two ECN bits are kept, and the IPv4 header checksum is fixed
 * incrementally with bpf_l3_csum_replace(). IPv6 packets whose fixed header
 * is directly followed by TCP or UDP get the same treatment in their Traffic
 * Class (IPv6 has no header checksum). The program never drops anything:
 * it always returns TC_ACT_OK.
 *
 * Headers are read with bpf_skb_load_bytes(), so packets whose headers are
 * not in the linear part of the skb are handled too.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define TC_ACT_OK 0
#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define IPV4_FRAG_OFFSET 0x1fff
#define DSCP_MAX 63

/* Byte offsets inside the IPv4 header. */
#define IPV4_TOS_OFF 1
#define IPV4_CSUM_OFF 10

/* Destination port (host byte order) -> DSCP to set. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u16);
	__type(value, __u8);
} tcm_dscp_by_port SEC(".maps");

enum {
	TCM_MARKED_IPV4 = 0,
	TCM_MARKED_IPV6 = 1,
	TCM_COUNTERS,
};

/* Index 0: IPv4 packets re-marked, index 1: IPv6 packets re-marked.
 * Packets that already carried the wanted DSCP are not counted. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TCM_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} tcm_marked_count SEC(".maps");

static __always_inline void count_marked(__u32 index)
{
	__u64 *value = bpf_map_lookup_elem(&tcm_marked_count, &index);

	if (value)
		__sync_fetch_and_add(value, 1);
}

/* DSCP configured for the TCP/UDP destination port of the transport header
 * that starts at byte offset l4_off, or -1 when there is none. */
static __always_inline int wanted_dscp(struct __sk_buff *skb, __u32 l4_off, __u8 proto)
{
	__be16 port;
	__u16 key;
	__u8 *dscp;

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return -1;
	/* TCP and UDP both start with the source port, then the destination. */
	if (bpf_skb_load_bytes(skb, l4_off + 2, &port, sizeof(port)) < 0)
		return -1;
	key = bpf_ntohs(port);
	dscp = bpf_map_lookup_elem(&tcm_dscp_by_port, &key);
	if (!dscp || *dscp > DSCP_MAX)
		return -1;
	return *dscp;
}

static __always_inline void mark_ipv4(struct __sk_buff *skb)
{
	struct iphdr iph;
	__u8 first[2], updated[2];
	__be16 old_word, new_word;
	__u32 ihl;
	__u8 tos;
	int dscp;

	if (bpf_skb_load_bytes(skb, ETH_HLEN, &iph, sizeof(iph)) < 0)
		return;
	/* Version and IHL share the first byte; read it whole rather than
	 * through the endian-dependent bitfields. */
	__builtin_memcpy(first, &iph, sizeof(first));
	if ((first[0] >> 4) != 4)
		return;
	ihl = (first[0] & 0x0f) * 4;
	if (ihl < sizeof(iph))
		return;
	if (iph.frag_off & bpf_htons(IPV4_FRAG_OFFSET))
		return; /* later fragments have no transport header */

	dscp = wanted_dscp(skb, ETH_HLEN + ihl, iph.protocol);
	if (dscp < 0)
		return;
	tos = ((__u8)dscp << 2) | (iph.tos & 0x03);
	if (tos == iph.tos)
		return;

	/* The checksum covers 16-bit words: the TOS byte is the second half
	 * of the first word, next to version/IHL. */
	updated[0] = first[0];
	updated[1] = tos;
	__builtin_memcpy(&old_word, first, sizeof(old_word));
	__builtin_memcpy(&new_word, updated, sizeof(new_word));
	if (bpf_skb_store_bytes(skb, ETH_HLEN + IPV4_TOS_OFF, &tos, sizeof(tos), 0) < 0)
		return;
	if (bpf_l3_csum_replace(skb, ETH_HLEN + IPV4_CSUM_OFF, old_word, new_word,
				sizeof(new_word)) < 0)
		return;
	count_marked(TCM_MARKED_IPV4);
}

static __always_inline void mark_ipv6(struct __sk_buff *skb)
{
	struct ipv6hdr ip6h;
	__u8 first[2], updated[2];
	__u8 tclass, wanted;
	int dscp;

	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip6h, sizeof(ip6h)) < 0)
		return;
	__builtin_memcpy(first, &ip6h, sizeof(first));
	if ((first[0] >> 4) != 6)
		return;

	dscp = wanted_dscp(skb, ETH_HLEN + sizeof(ip6h), ip6h.nexthdr);
	if (dscp < 0)
		return;
	/* Traffic Class straddles the first two bytes: 4 bits after the
	 * version, then 4 bits before the flow label. */
	tclass = ((first[0] & 0x0f) << 4) | (first[1] >> 4);
	wanted = ((__u8)dscp << 2) | (tclass & 0x03);
	if (wanted == tclass)
		return;
	updated[0] = (first[0] & 0xf0) | (wanted >> 4);
	updated[1] = (first[1] & 0x0f) | ((wanted & 0x0f) << 4);
	if (bpf_skb_store_bytes(skb, ETH_HLEN, updated, sizeof(updated), 0) < 0)
		return;
	count_marked(TCM_MARKED_IPV6);
}

SEC("tc")
int tc_egress_marker(struct __sk_buff *skb)
{
	__be16 h_proto;

	/* Ethernet devices only: the frame must start with a MAC header
	 * whose EtherType agrees with the skb protocol. */
	if (bpf_skb_load_bytes(skb, 12, &h_proto, sizeof(h_proto)) < 0)
		return TC_ACT_OK;
	if (h_proto != skb->protocol)
		return TC_ACT_OK;

	if (h_proto == bpf_htons(ETH_P_IP))
		mark_ipv4(skb);
	else if (h_proto == bpf_htons(ETH_P_IPV6))
		mark_ipv6(skb);
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
