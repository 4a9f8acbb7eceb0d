/// Finds the maps an object defines: BTF-defined maps in `.maps`, legacy definitions in
/// `maps`, and the global-data sections that loaders turn into array maps.
struct MapCollector {
    let elf: ELFFile
    let btf: BTF?

    static func isGlobalDataSection(_ name: String) -> Bool {
        [".data", ".rodata", ".bss"].contains { name == $0 || name.hasPrefix($0 + ".") } || name == ".kconfig"
    }

    func collect() throws(BPFObjectError) -> [MapReport] {
        var maps = try btfMaps() + legacyMaps()
        for section in elf.sections where Self.isGlobalDataSection(section.name) && section.size > 0 && !section.isExecutable {
            maps.append(MapReport(name: section.name, type: "array", typeID: 2, keySize: 4,
                                  valueSize: UInt32(clamping: section.size), maxEntries: 1,
                                  flags: 0, pinning: "none", definition: .globalData))
        }
        var seen = Set<String>()
        for map in maps where !seen.insert(map.name).inserted {
            throw .badSection(section: map.definition == .legacy ? "maps" : ".maps", reason: "map \(map.name) is defined twice")
        }
        return maps
    }

    private func btfMaps() throws(BPFObjectError) -> [MapReport] {
        guard elf.section(named: ".maps") != nil else { return [] }
        guard let btf else { throw .badSection(section: ".maps", reason: "BTF-defined maps need a .BTF section") }
        guard let section = btf.dataSection(named: ".maps") else { return [] }
        var maps: [MapReport] = []
        for variable in section.sectionVariables {
            guard let v = btf.type(variable.type), v.kind == .variable else {
                throw .badBTF(".maps entry \(variable.type) is not a variable")
            }
            guard let (_, definition) = btf.resolve(v.sizeOrType), definition.kind == .structure else {
                throw .badBTF("map \(v.name) is not defined by a struct")
            }
            maps.append(try btfMap(named: v.name, definition: definition, btf: btf))
        }
        return maps
    }

    private func btfMap(named name: String, definition: BTF.TypeRecord, btf: BTF) throws(BPFObjectError) -> MapReport {
        var fields: [String: UInt32] = [:]
        var keySize: UInt32?, valueSize: UInt32?
        for member in definition.members {
            guard let (_, pointer) = btf.resolve(member.type) else { throw .badBTF("map \(name) member \(member.name) has no type") }
            switch member.name {
            case "key", "value":
                guard pointer.kind == .pointer, let size = btf.size(of: pointer.sizeOrType), size <= UInt64(UInt32.max) else {
                    throw .badBTF("map \(name) member \(member.name) must point to a sized type")
                }
                if member.name == "key" { keySize = UInt32(size) } else { valueSize = UInt32(size) }
            case "values":
                // Initial values of a map-in-map or program array: an array of pointers.
                if valueSize == nil { valueSize = 4 }
            default:
                // `__ulong(name, N)` is encoded as an anonymous enum whose one value is N.
                if pointer.kind == .enumeration || pointer.kind == .enum64 {
                    fields[member.name] = UInt32(truncatingIfNeeded: pointer.enumValues.first ?? 0)
                    continue
                }
                // `__uint(name, N)` is encoded as `int (*name)[N]`.
                guard pointer.kind == .pointer, let (_, array) = btf.resolve(pointer.sizeOrType), array.kind == .array else {
                    throw .badBTF("map \(name) member \(member.name) is not an __uint() field")
                }
                fields[member.name] = array.arrayCount
            }
        }
        guard let type = fields["type"] else { throw .badBTF("map \(name) does not declare its type") }
        return MapReport(name: name, type: MapType.name(type), typeID: type,
                         keySize: keySize ?? fields["key_size"] ?? 0, valueSize: valueSize ?? fields["value_size"] ?? 0,
                         maxEntries: fields["max_entries"] ?? 0, flags: fields["map_flags"] ?? 0,
                         pinning: (fields["pinning"] ?? 0) == 1 ? "by_name" : "none", definition: .btf)
    }

    private func legacyMaps() throws(BPFObjectError) -> [MapReport] {
        guard let section = elf.section(named: "maps") else { return [] }
        guard section.hasFileData else { throw .badSection(section: "maps", reason: "has no contents in the file") }
        let symbols = elf.symbols.filter { $0.sectionIndex == section.index && !$0.isSection && !$0.name.isEmpty }
            .sorted { $0.value < $1.value }
        guard !symbols.isEmpty else { return [] }
        let r = elf.reader
        var maps: [MapReport] = []
        for (i, symbol) in symbols.enumerated() {
            let end = UInt64(section.size)
            let next = i + 1 < symbols.count ? min(symbols[i + 1].value, end) : end
            // A symbol without a size extends to the next symbol (or the section's end).
            let size = symbol.size > 0 ? symbol.size : next &- symbol.value
            guard symbol.value <= end, next >= symbol.value || symbol.size > 0, size >= 20, size <= end - symbol.value else {
                throw .badSection(section: "maps", reason: "definition of map \(symbol.name) does not fit (offset \(symbol.value), size \(size))")
            }
            let base = section.offset + Int(symbol.value)
            let type = r.unchecked32(base)
            // iproute2's struct bpf_elf_map carries a pinning field after `id`.
            var pinning = "none"
            if size >= 28 {
                switch r.unchecked32(base + 24) {
                case 1: pinning = "object"
                case 2: pinning = "global"
                case 0: pinning = "none"
                default: pinning = "custom"
                }
            }
            maps.append(MapReport(name: symbol.name, type: MapType.name(type), typeID: type,
                                  keySize: r.unchecked32(base + 4), valueSize: r.unchecked32(base + 8),
                                  maxEntries: r.unchecked32(base + 12), flags: r.unchecked32(base + 16),
                                  pinning: pinning, definition: .legacy))
        }
        return maps
    }
}
