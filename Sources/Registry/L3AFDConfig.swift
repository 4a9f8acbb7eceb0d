import PackageFormat

/// The L3AFD `BPFProgram` config entry for a version, filled from its manifest, and the part of
/// L3AFD's `bpf_programs` it belongs in. Field names are L3AFD's own.
public struct L3AFDConfigEntry: Codable, Sendable, Equatable {
    public struct Program: Codable, Sendable, Equatable {
        public var id = 0
        public var name: String
        public var seq_id = 1
        public var artifact: String
        public var map_name: String
        public var cmd_start: String
        public var cmd_stop: String
        public var cmd_status: String
        public var cmd_config = ""
        public var cmd_update: String
        public var version: String
        public var user_program_daemon: Bool
        public var is_plugin = false
        public var cpu = 0
        public var memory = 0
        public var admin_status = "enabled"
        public var prog_type: String
        public var rules_file = ""
        public var rules = ""
        public var config_file_path = ""
        public var cfg_version = 1
        public var start_args: [String: String]
        public var stop_args: [String: String]
        public var status_args: [String: String]
        public var update_args: [String: String]
        public var map_args: [MapArgument]
        public var config_args: [String: String] = [:]
        public var monitor_maps: [MonitorMap]
        public var ebpf_package_repo_url: String
        public var object_file: String
        public var entry_function_name: String
    }

    public struct MapArgument: Codable, Sendable, Equatable {
        public var name: String
        public var args: [KeyValue]
    }

    public struct KeyValue: Codable, Sendable, Equatable {
        public var key: Int64
        public var value: Int64
    }

    public struct MonitorMap: Codable, Sendable, Equatable {
        public var name: String
        public var key: Int64
        public var aggregator: String
    }

    /// `xdp_ingress`, `tc_ingress`, `tc_egress` or `probes`.
    public var section: String
    public var bpf_program: Program

    /// - Parameters:
    ///   - version: what L3AFD should request: the exact version, or "latest".
    ///   - repositoryURL: the URL L3AFD downloads from (the repository, or a node agent).
    public init(manifest: Manifest, version: String, repositoryURL: String) {
        let program = manifest.programs[0]
        let user = manifest.userProgram
        let defaults = manifest.l3afd
        switch program.type {
        case "xdp": section = "xdp_ingress"
        case "tc": section = program.object.contains("ingress") || program.entry.contains("ingress") ? "tc_ingress" : "tc_egress"
        default: section = "probes"
        }
        bpf_program = Program(
            name: manifest.name.value, artifact: manifest.artifact, map_name: program.chainMap ?? "",
            cmd_start: user?.cmdStart ?? "", cmd_stop: user?.cmdStop ?? "", cmd_status: user?.cmdStatus ?? "",
            cmd_update: user?.cmdUpdate ?? "", version: version, user_program_daemon: user?.daemon ?? false,
            prog_type: program.type, start_args: defaults.startArgs, stop_args: defaults.stopArgs,
            status_args: defaults.statusArgs, update_args: defaults.updateArgs,
            map_args: defaults.mapArgs.map { MapArgument(name: $0.name, args: $0.args.map { KeyValue(key: $0.key, value: $0.value) }) },
            monitor_maps: defaults.monitorMaps.map { MonitorMap(name: $0.name, key: $0.key, aggregator: $0.aggregator) },
            ebpf_package_repo_url: repositoryURL, object_file: program.object, entry_function_name: program.entry)
    }
}
