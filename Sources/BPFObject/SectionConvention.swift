/// How a program's ELF section name tells loaders its program type and attach point.
///
/// The section naming convention is libbpf's (`SEC("xdp")`, `SEC("tp/sched/sched_switch")`, ...),
/// which every mainstream loader follows. `kind` is the word epr manifests use for the type.
public struct SectionConvention: Sendable, Equatable {
    /// The kernel's program type, as bpftool spells it (`xdp`, `sched_cls`, `tracepoint`, ...).
    public let programType: String
    /// The manifest's word for the program (`xdp`, `tc`, `tracepoint`, `kprobe`, `fentry`, ...).
    public let kind: String
    /// What follows the prefix, e.g. `sched/sched_process_exec` or `ingress`.
    public let attachTarget: String?

    private struct Rule {
        let prefix: String
        let type: String
        let kind: String
        /// The prefix must be followed by `/target`.
        let needsTarget: Bool
    }

    private static func rules(_ type: String, _ kind: String, _ prefixes: [String], target: Bool = false) -> [Rule] {
        prefixes.map { Rule(prefix: $0, type: type, kind: kind, needsTarget: target) }
    }

    // Longest prefixes first so that `xdp.frags` wins over `xdp` and `kretprobe` over `kprobe`.
    private static let table: [Rule] = (
        rules("xdp", "xdp", ["xdp", "xdp.frags", "xdp/devmap", "xdp/cpumap", "xdp.frags/devmap", "xdp.frags/cpumap"])
        + rules("sched_cls", "tc", ["tc", "tc/ingress", "tc/egress", "tcx/ingress", "tcx/egress", "classifier",
                                    "netkit/primary", "netkit/peer"])
        + rules("sched_act", "tc", ["action"])
        + rules("tracepoint", "tracepoint", ["tracepoint", "tp"], target: true)
        + rules("raw_tracepoint", "raw_tracepoint", ["raw_tracepoint", "raw_tp"], target: true)
        + rules("raw_tracepoint_writable", "raw_tracepoint", ["raw_tracepoint.w", "raw_tp.w"], target: true)
        + rules("tracing", "tp_btf", ["tp_btf"], target: true)
        + rules("tracing", "fentry", ["fentry", "fentry.s"], target: true)
        + rules("tracing", "fexit", ["fexit", "fexit.s"], target: true)
        + rules("tracing", "fmod_ret", ["fmod_ret", "fmod_ret.s"], target: true)
        + rules("tracing", "iter", ["iter", "iter.s"], target: true)
        + rules("ext", "freplace", ["freplace"], target: true)
        + rules("lsm", "lsm", ["lsm", "lsm.s", "lsm_cgroup"], target: true)
        + rules("kprobe", "kprobe", ["kprobe", "kprobe.multi", "ksyscall"])
        + rules("kprobe", "kretprobe", ["kretprobe", "kretprobe.multi", "kretsyscall"])
        + rules("kprobe", "uprobe", ["uprobe", "uprobe.s", "uprobe.multi", "uprobe.multi.s", "usdt"])
        + rules("kprobe", "uretprobe", ["uretprobe", "uretprobe.s", "uretprobe.multi", "uretprobe.multi.s"])
        + rules("socket_filter", "socket_filter", ["socket"])
        + rules("sk_reuseport", "sk_reuseport", ["sk_reuseport", "sk_reuseport/migrate"])
        + rules("perf_event", "perf_event", ["perf_event"])
        + rules("lwt_in", "lwt_in", ["lwt_in"]) + rules("lwt_out", "lwt_out", ["lwt_out"])
        + rules("lwt_xmit", "lwt_xmit", ["lwt_xmit"]) + rules("lwt_seg6local", "lwt_seg6local", ["lwt_seg6local"])
        + rules("sock_ops", "sockops", ["sockops"])
        + rules("sk_skb", "sk_skb", ["sk_skb", "sk_skb/stream_parser", "sk_skb/stream_verdict", "sk_skb/verdict"])
        + rules("sk_msg", "sk_msg", ["sk_msg"])
        + rules("lirc_mode2", "lirc_mode2", ["lirc_mode2"])
        + rules("flow_dissector", "flow_dissector", ["flow_dissector"])
        + rules("cgroup_skb", "cgroup_skb", ["cgroup_skb/ingress", "cgroup_skb/egress", "cgroup/skb"])
        + rules("cgroup_sock", "cgroup_sock", ["cgroup/sock_create", "cgroup/sock_release", "cgroup/sock",
                                               "cgroup/post_bind4", "cgroup/post_bind6"])
        + rules("cgroup_sock_addr", "cgroup_sock_addr",
                ["bind4", "bind6", "connect4", "connect6", "connect_unix", "sendmsg4", "sendmsg6", "sendmsg_unix",
                 "recvmsg4", "recvmsg6", "recvmsg_unix", "getpeername4", "getpeername6", "getpeername_unix",
                 "getsockname4", "getsockname6", "getsockname_unix"].map { "cgroup/" + $0 })
        + rules("cgroup_sysctl", "cgroup_sysctl", ["cgroup/sysctl"])
        + rules("cgroup_sockopt", "cgroup_sockopt", ["cgroup/getsockopt", "cgroup/setsockopt"])
        + rules("cgroup_device", "cgroup_device", ["cgroup/dev"])
        + rules("struct_ops", "struct_ops", ["struct_ops", "struct_ops.s"])
        + rules("sk_lookup", "sk_lookup", ["sk_lookup"])
        + rules("syscall", "syscall", ["syscall"])
        + rules("netfilter", "netfilter", ["netfilter"])
    ).sorted { $0.prefix.count > $1.prefix.count }

    /// The convention a section name follows, or nil when no loader would recognise it.
    public init?(sectionName: String) {
        for rule in Self.table {
            if sectionName == rule.prefix, !rule.needsTarget {
                self.init(programType: rule.type, kind: rule.kind, attachTarget: Self.implicitTarget(rule.prefix))
                return
            }
            if sectionName.hasPrefix(rule.prefix + "/") || (rule.prefix == "struct_ops" && sectionName.hasPrefix("struct_ops+")) {
                let target = String(sectionName.dropFirst(rule.prefix.count + 1))
                if rule.needsTarget && target.isEmpty { continue }
                self.init(programType: rule.type, kind: rule.kind, attachTarget: target.isEmpty ? nil : target)
                return
            }
        }
        return nil
    }

    private init(programType: String, kind: String, attachTarget: String?) {
        self.programType = programType
        self.kind = kind
        self.attachTarget = attachTarget
    }

    private static func implicitTarget(_ prefix: String) -> String? {
        guard let slash = prefix.firstIndex(of: "/") else { return nil }
        return String(prefix[prefix.index(after: slash)...])
    }
}
