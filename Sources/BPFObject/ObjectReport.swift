/// What inspection found in one BPF ELF object. Encodes to the documented `--json` schema
/// (docs/inspect-json.md); the key names are part of that contract.
public struct ObjectReport: Codable, Sendable, Equatable {
    /// "little" or "big".
    public var byteOrder: String
    /// The `license` section's string, if the object has one.
    public var license: String?
    /// Whether the kernel treats ``license`` as GPL-compatible.
    public var gplCompatible: Bool
    /// The legacy `version` section's kernel version code, if present.
    public var kernelVersion: UInt32?
    public var hasBTF: Bool
    public var hasBTFExt: Bool
    /// CO-RE relocation records in `.BTF.ext`; more than zero means the object is CO-RE.
    public var coreRelocations: Int
    public var programs: [ProgramReport]
    /// Functions in `.text`, called by programs (BPF-to-BPF calls).
    public var subprograms: [SubprogramReport]
    public var maps: [MapReport]
    /// Every distinct kernel function (kfunc) any program calls.
    public var kfuncs: [String]

    public var isCORE: Bool { coreRelocations > 0 }

    enum CodingKeys: String, CodingKey {
        case byteOrder = "byte_order", license, gplCompatible = "gpl_compatible", kernelVersion = "kernel_version"
        case hasBTF = "has_btf", hasBTFExt = "has_btf_ext", coreRelocations = "core_relocations"
        case programs, subprograms, maps, kfuncs
    }

    public func program(named name: String) -> ProgramReport? { programs.first { $0.name == name } }
    public func map(named name: String) -> MapReport? { maps.first { $0.name == name } }
}

public struct ProgramReport: Codable, Sendable, Equatable {
    /// The entry function's name (what L3AFD calls `entry_function_name`).
    public var name: String
    public var section: String
    /// The kernel program type as bpftool spells it, or "unknown" for unrecognised sections.
    public var type: String
    /// The manifest's word for the program type (`xdp`, `tc`, `tracepoint`, ...).
    public var kind: String
    public var attachTarget: String?
    public var instructions: Int
    /// Helpers called by the program or any subprogram it reaches, by id.
    public var helpers: [HelperCall]
    public var kfuncs: [String]
    /// Number of `bpf_tail_call` call sites.
    public var tailCalls: Int
    /// Program-array maps passed to `bpf_tail_call`, where the object makes that evident.
    public var tailCallMaps: [String]
    /// Maps the program (or its subprograms) refers to, by name.
    public var maps: [String]
    public var subprograms: [String]
    public var coreRelocations: Int

    enum CodingKeys: String, CodingKey {
        case name, section, type, kind, attachTarget = "attach_target", instructions, helpers, kfuncs
        case tailCalls = "tail_calls", tailCallMaps = "tail_call_maps", maps, subprograms
        case coreRelocations = "core_relocations"
    }
}

public struct HelperCall: Codable, Sendable, Equatable, Hashable {
    public var id: Int32
    /// "unknown" for ids the kernel does not define.
    public var name: String
    public var gplOnly: Bool
    public var securitySensitive: Bool

    enum CodingKeys: String, CodingKey {
        case id, name, gplOnly = "gpl_only", securitySensitive = "security_sensitive"
    }
}

public struct SubprogramReport: Codable, Sendable, Equatable {
    public var name: String
    public var section: String
    public var instructions: Int
}

public struct MapReport: Codable, Sendable, Equatable {
    public enum Definition: String, Codable, Sendable {
        /// A BTF-defined map in `.maps`.
        case btf
        /// A legacy definition in the `maps` section.
        case legacy
        /// A global-data section (`.data`, `.rodata`, `.bss`, `.kconfig`) that loaders turn into an array map.
        case globalData = "global_data"
    }

    public var name: String
    /// The map type as bpftool spells it (`hash`, `prog_array`, `ringbuf`, ...).
    public var type: String
    public var typeID: UInt32
    public var keySize: UInt32
    public var valueSize: UInt32
    public var maxEntries: UInt32
    public var flags: UInt32
    /// "none", "by_name" (libbpf), "object" or "global" (iproute2).
    public var pinning: String
    public var definition: Definition

    enum CodingKeys: String, CodingKey {
        case name, type, typeID = "type_id", keySize = "key_size", valueSize = "value_size"
        case maxEntries = "max_entries", flags, pinning, definition
    }
}

/// Bounds on what inspection accepts, so hostile objects cannot make it work without end.
public struct InspectionLimits: Sendable {
    public var maxSections = 4096
    public var maxSymbols = 1 << 20
    public var maxBTFTypes = 1 << 20
    public var maxBTFExtRecords = 1 << 22
    public init() {}
}

/// License strings the kernel treats as GPL-compatible (exact, case-sensitive match).
public enum KernelLicense {
    public static let gplCompatible: Set<String> = [
        "GPL", "GPL v2", "GPL and additional rights", "Dual BSD/GPL", "Dual MIT/GPL", "Dual MPL/GPL",
    ]

    public static func isGPLCompatible(_ license: String?) -> Bool {
        license.map(gplCompatible.contains) ?? false
    }
}
