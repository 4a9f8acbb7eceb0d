/// A parsed ELF64 relocatable object for the BPF machine: sections, symbols and relocations.
///
/// Only what BPF inspection needs is decoded, and every offset and size is checked against
/// the file before it is used.
struct ELFFile: Sendable {
    struct Section: Sendable {
        let index: Int
        let name: String
        let type: UInt32
        let flags: UInt64
        let offset: Int
        let size: Int
        let link: UInt32
        let info: UInt32
        let entrySize: UInt64

        var isExecutable: Bool { flags & ELFFile.shfExecInstr != 0 && type == ELFFile.shtProgBits }
        var hasFileData: Bool { type != ELFFile.shtNoBits }
    }

    struct Symbol: Sendable {
        let name: String
        let info: UInt8
        let sectionIndex: Int
        let value: UInt64
        let size: UInt64

        var binding: UInt8 { info >> 4 }
        var kind: UInt8 { info & 0xF }
        var isFunction: Bool { kind == ELFFile.sttFunc }
        var isSection: Bool { kind == ELFFile.sttSection }
        var isUndefined: Bool { sectionIndex == 0 }
        var isGlobal: Bool { binding == ELFFile.stbGlobal || binding == ELFFile.stbWeak }
    }

    struct Relocation: Sendable {
        let offset: UInt64
        let symbol: Int
        let type: UInt32
    }

    static let emBPF: UInt16 = 247
    static let etRel: UInt16 = 1
    static let shtProgBits: UInt32 = 1, shtSymTab: UInt32 = 2, shtRel: UInt32 = 9
    static let shtNoBits: UInt32 = 8, shtSymTabShndx: UInt32 = 18
    static let shfExecInstr: UInt64 = 0x4
    static let sttSection: UInt8 = 3, sttFunc: UInt8 = 2, sttObject: UInt8 = 1
    static let stbGlobal: UInt8 = 1, stbWeak: UInt8 = 2

    let reader: ByteReader
    let sections: [Section]
    let symbols: [Symbol]
    /// Relocations keyed by the index of the section they apply to.
    let relocations: [Int: [Relocation]]

    var littleEndian: Bool { reader.littleEndian }

    init(bytes: [UInt8], limits: InspectionLimits) throws(BPFObjectError) {
        guard bytes.count >= 16 else {
            throw bytes.starts(with: [0x7F, 0x45, 0x4C, 0x46]) || bytes.count < 4
                ? .truncated(what: "ELF identification", offset: 0, length: 16, fileSize: bytes.count)
                : .notELF
        }
        guard bytes[0] == 0x7F, bytes[1] == 0x45, bytes[2] == 0x4C, bytes[3] == 0x46 else { throw .notELF }
        guard bytes[4] == 2 else { throw .notELF64(elfClass: bytes[4]) }
        guard bytes[5] == 1 || bytes[5] == 2 else { throw .badByteOrder(bytes[5]) }
        let r = ByteReader(bytes, littleEndian: bytes[5] == 1)
        try r.check(0, 64, "ELF header")
        let machine = try r.u16(18, "e_machine")
        guard machine == Self.emBPF else { throw .wrongMachine(machine) }
        let type = try r.u16(16, "e_type")
        guard type == Self.etRel else { throw .notRelocatable(elfType: type) }
        reader = r
        sections = try Self.readSections(r, limits: limits)
        symbols = try Self.readSymbols(r, sections: sections, limits: limits)
        relocations = try Self.readRelocations(r, sections: sections, symbolCount: symbols.count)
    }

    func section(named name: String) -> Section? { sections.first { $0.name == name } }

    func data(of section: Section) throws(BPFObjectError) -> ArraySlice<UInt8> {
        guard section.hasFileData else { return [] }
        return try reader.slice(section.offset, section.size, "section \(section.name)")
    }

    private static func readSections(_ r: ByteReader, limits: InspectionLimits) throws(BPFObjectError) -> [Section] {
        let shoff = try Int(checked: r.u64(40, "e_shoff"), "e_shoff", fileSize: r.count)
        let shentsize = Int(try r.u16(58, "e_shentsize"))
        var shnum = Int(try r.u16(60, "e_shnum"))
        var shstrndx = Int(try r.u16(62, "e_shstrndx"))
        guard shoff != 0 else { throw .badHeader("the object has no section header table") }
        guard shentsize == 64 else { throw .badHeader("section header size is \(shentsize), expected 64") }
        try r.check(shoff, 64, "section header 0")
        // Extended numbering: the real counts live in section header 0.
        if shnum == 0 {
            let extended = try r.u64(shoff + 32, "section header 0")
            guard extended <= UInt64(limits.maxSections) else {
                throw .tooManySections(count: extended > UInt64(Int.max) ? Int.max : Int(extended), limit: limits.maxSections)
            }
            shnum = Int(extended)
        }
        if shstrndx == 0xFFFF { shstrndx = Int(try r.u32(shoff + 40, "section header 0 sh_link")) }
        guard shnum <= limits.maxSections else { throw .tooManySections(count: shnum, limit: limits.maxSections) }
        guard shnum > 0 else { throw .badHeader("the object has no sections") }
        try r.check(shoff, shnum * 64, "section header table")
        guard shstrndx < shnum else { throw .badHeader("section name table index \(shstrndx) is out of range") }

        struct Raw { var name: UInt32, type: UInt32, flags: UInt64, offset: UInt64, size: UInt64, link: UInt32, info: UInt32, entsize: UInt64 }
        var raws: [Raw] = []
        raws.reserveCapacity(shnum)
        for i in 0..<shnum {
            let base = shoff + i * 64
            raws.append(Raw(name: r.unchecked32(base), type: r.unchecked32(base + 4), flags: try r.u64(base + 8, "sh_flags"),
                            offset: try r.u64(base + 24, "sh_offset"), size: try r.u64(base + 32, "sh_size"),
                            link: r.unchecked32(base + 40), info: r.unchecked32(base + 44), entsize: try r.u64(base + 56, "sh_entsize")))
        }
        let strtab = raws[shstrndx]
        let strOffset = try Int(checked: strtab.offset, "section name table", fileSize: r.count)
        let strSize = try Int(checked: strtab.size, "section name table", fileSize: r.count)
        try r.check(strOffset, strSize, "section name table")
        var sections: [Section] = []
        sections.reserveCapacity(shnum)
        for (i, raw) in raws.enumerated() {
            let name = i == 0 ? "" : try r.cString(strOffset + Int(raw.name), end: strOffset + strSize, "name of section \(i)")
            let label = name.isEmpty ? "#\(i)" : name
            if raw.type != shtNoBits && i != 0 {
                guard raw.offset <= UInt64(r.count), raw.size <= UInt64(r.count) - raw.offset else {
                    throw .sectionOutOfBounds(section: label, offset: raw.offset, size: raw.size, fileSize: r.count)
                }
            }
            guard raw.size <= UInt64(Int.max) else { throw .badSection(section: label, reason: "size \(raw.size) is impossible") }
            // Header 0 is reserved: whatever its fields say, it describes no section.
            if i == 0 {
                sections.append(Section(index: 0, name: "", type: 0, flags: 0, offset: 0, size: 0, link: 0, info: 0, entrySize: 0))
                continue
            }
            sections.append(Section(index: i, name: name, type: raw.type, flags: raw.flags,
                                    offset: i == 0 || raw.type == shtNoBits ? 0 : Int(raw.offset), size: Int(raw.size),
                                    link: raw.link, info: raw.info, entrySize: raw.entsize))
        }
        return sections
    }

    private static func readSymbols(_ r: ByteReader, sections: [Section], limits: InspectionLimits) throws(BPFObjectError) -> [Symbol] {
        let tables = sections.filter { $0.type == shtSymTab }
        guard let symtab = tables.first else { return [] }
        guard tables.count == 1 else { throw .badSymbolTable("the object has \(tables.count) symbol tables") }
        guard symtab.entrySize == 24 else { throw .badSymbolTable("symbol entry size is \(symtab.entrySize), expected 24") }
        guard symtab.size % 24 == 0 else { throw .badSymbolTable("size \(symtab.size) is not a multiple of 24") }
        guard Int(symtab.link) < sections.count, Int(symtab.link) != 0 else {
            throw .badSymbolTable("string table index \(symtab.link) is out of range")
        }
        try r.check(symtab.offset, symtab.size, "symbol table")
        let count = symtab.size / 24
        guard count <= limits.maxSymbols else { throw .badSymbolTable("\(count) symbols, more than the limit of \(limits.maxSymbols)") }
        let strtab = sections[Int(symtab.link)]
        let extended = sections.first { $0.type == shtSymTabShndx && Int($0.link) == symtab.index }
        var symbols: [Symbol] = []
        symbols.reserveCapacity(count)
        for i in 0..<count {
            let base = symtab.offset + i * 24
            let nameOffset = Int(r.unchecked32(base))
            let name = nameOffset == 0 ? "" : try r.cString(strtab.offset + nameOffset, end: strtab.offset + strtab.size, "name of symbol \(i)")
            var shndx = Int(r.unchecked16(base + 6))
            if shndx == 0xFFFF, let extended {
                shndx = Int(try r.u32(extended.offset + i * 4, "extended section index of symbol \(i)"))
            } else if shndx >= 0xFF00 {
                shndx = 0xFFFF_FFFF // reserved indices (ABS, COMMON): not in any section
            }
            symbols.append(Symbol(name: name, info: r.bytes[base + 4], sectionIndex: shndx,
                                  value: try r.u64(base + 8, "st_value"), size: try r.u64(base + 16, "st_size")))
        }
        return symbols
    }

    private static func readRelocations(_ r: ByteReader, sections: [Section], symbolCount: Int) throws(BPFObjectError) -> [Int: [Relocation]] {
        var result: [Int: [Relocation]] = [:]
        for section in sections where section.type == shtRel {
            try r.check(section.offset, section.size, "relocation section \(section.name)")
            guard section.size % 16 == 0 else {
                throw .badSection(section: section.name, reason: "relocation section size \(section.size) is not a multiple of 16")
            }
            let target = Int(section.info)
            guard target > 0, target < sections.count else {
                throw .badSection(section: section.name, reason: "relocates section \(target), which does not exist")
            }
            var list: [Relocation] = []
            list.reserveCapacity(section.size / 16)
            for i in 0..<(section.size / 16) {
                let base = section.offset + i * 16
                let info = try r.u64(base + 8, "r_info")
                let symbol = Int(info >> 32)
                guard symbol < symbolCount else {
                    throw .badSection(section: section.name, reason: "relocation \(i) names symbol \(symbol), beyond the symbol table")
                }
                list.append(Relocation(offset: try r.u64(base, "r_offset"), symbol: symbol, type: UInt32(truncatingIfNeeded: info)))
            }
            result[target, default: []].append(contentsOf: list)
        }
        return result
    }
}
