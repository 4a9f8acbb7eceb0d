/// The closed word lists a manifest is checked against.
public enum ManifestVocabulary {
    public static let categories: Set<String> = [
        "networking", "security", "observability", "tracing", "performance", "traffic-control",
        "load-balancing", "monitoring", "other",
    ]
    public static let architectures: Set<String> = [
        "x86_64", "arm64", "arm", "riscv64", "ppc64le", "s390x", "loongarch64", "mips64",
    ]
    /// Program kinds a manifest may declare: L3AFD's `prog_type` words and libbpf's section words.
    public static let programKinds: Set<String> = [
        "xdp", "tc", "tracepoint", "raw_tracepoint", "tp_btf", "fentry", "fexit", "fmod_ret", "iter", "freplace",
        "lsm", "kprobe", "kretprobe", "uprobe", "uretprobe", "socket_filter", "sk_reuseport", "perf_event",
        "lwt_in", "lwt_out", "lwt_xmit", "lwt_seg6local", "sockops", "sk_skb", "sk_msg", "lirc_mode2",
        "flow_dissector", "cgroup_skb", "cgroup_sock", "cgroup_sock_addr", "cgroup_sysctl", "cgroup_sockopt",
        "cgroup_device", "struct_ops", "sk_lookup", "syscall", "netfilter",
    ]
    public static let aggregators: Set<String> = ["scalar", "max-rate", "avg"]
    public static let anyLinux = "any"
    public static let windows = "Windows"
    public static let maxKeywords = 10
}
