/// Builds small ELF64 files section by section, so tests can make well-formed BPF objects with
/// exactly the features under test, and hostile ones with exactly one thing wrong.
struct ELFBuilder {
    struct Section {
        var name: String
        var type: UInt32
        var flags: UInt64 = 0
        var data: [UInt8] = []
        var link: UInt32 = 0
        var info: UInt32 = 0
        var entrySize: UInt64 = 0
        /// Overrides for hostile files.
        var offsetOverride: UInt64?
        var sizeOverride: UInt64?
    }

    var littleEndian = true
    var machine: UInt16 = 247
    var type: UInt16 = 1
    var elfClass: UInt8 = 2
    var sections: [Section] = []

    static let progbits: UInt32 = 1, symtab: UInt32 = 2, strtab: UInt32 = 3, rel: UInt32 = 9
    static let exec: UInt64 = 0x6 // SHF_ALLOC | SHF_EXECINSTR

    mutating func add(_ section: Section) -> Int {
        sections.append(section)
        return sections.count // index after the null section
    }

    func u16(_ v: UInt16) -> [UInt8] { littleEndian ? [UInt8(v & 0xFF), UInt8(v >> 8)] : [UInt8(v >> 8), UInt8(v & 0xFF)] }
    func u32(_ v: UInt32) -> [UInt8] {
        let le = (0..<4).map { UInt8((v >> (8 * $0)) & 0xFF) }
        return littleEndian ? le : le.reversed()
    }
    func u64(_ v: UInt64) -> [UInt8] {
        let le = (0..<8).map { UInt8((v >> (8 * UInt64($0))) & 0xFF) }
        return littleEndian ? le : le.reversed()
    }

    /// A BPF instruction.
    func insn(_ opcode: UInt8, dst: UInt8 = 0, src: UInt8 = 0, off: Int16 = 0, imm: Int32 = 0) -> [UInt8] {
        let regs = littleEndian ? (src << 4) | dst : (dst << 4) | src
        return [opcode, regs] + u16(UInt16(bitPattern: off)) + u32(UInt32(bitPattern: imm))
    }

    /// A symbol table entry.
    func symbol(name: UInt32, info: UInt8, section: UInt16, value: UInt64, size: UInt64) -> [UInt8] {
        u32(name) + [info, 0] + u16(section) + u64(value) + u64(size)
    }

    func rel(offset: UInt64, symbol: UInt32, type: UInt32) -> [UInt8] {
        u64(offset) + u64(UInt64(symbol) << 32 | UInt64(type))
    }

    func build() -> [UInt8] {
        var names: [UInt8] = [0]
        var nameOffsets: [UInt32] = []
        for section in sections + [Section(name: ".shstrtab", type: Self.strtab)] {
            nameOffsets.append(UInt32(names.count))
            names += Array(section.name.utf8) + [0]
        }
        let all = sections + [Section(name: ".shstrtab", type: Self.strtab, data: names)]
        var body: [UInt8] = []
        var offsets: [UInt64] = []
        for section in all {
            while body.count % 8 != 0 { body.append(0) }
            offsets.append(UInt64(64 + body.count))
            body += section.data
        }
        while body.count % 8 != 0 { body.append(0) }
        let shoff = UInt64(64 + body.count)
        var header: [UInt8] = [0x7F, 0x45, 0x4C, 0x46, elfClass, littleEndian ? 1 : 2, 1, 0] + [UInt8](repeating: 0, count: 8)
        header += u16(type) + u16(machine) + u32(1) + u64(0) + u64(0) + u64(shoff) + u32(0)
        header += u16(64) + u16(0) + u16(0) + u16(64) + u16(UInt16(all.count + 1)) + u16(UInt16(all.count))
        var table = [UInt8](repeating: 0, count: 64)
        for (i, section) in all.enumerated() {
            table += u32(nameOffsets[i]) + u32(section.type) + u64(section.flags) + u64(0)
            table += u64(section.offsetOverride ?? offsets[i]) + u64(section.sizeOverride ?? UInt64(section.data.count))
            table += u32(section.link) + u32(section.info) + u64(8) + u64(section.entrySize)
        }
        return header + body + table
    }
}
