import TestSupport
import Testing
@testable import BPFObject

/// Malformed and hostile objects: each must be refused with the right typed error, never crash.
@Suite struct HostileObjectTests {
    let inspector = BPFObjectInspector()

    func refusal(_ bytes: [UInt8]) -> BPFObjectError? {
        do {
            _ = try inspector.inspect(bytes)
            return nil
        } catch {
            return error
        }
    }

    func valid() -> [UInt8] { SyntheticObjectTests.object(littleEndian: true) }

    func patch(_ bytes: [UInt8], at offset: Int, _ values: [UInt8]) -> [UInt8] {
        var copy = bytes
        copy.replaceSubrange(offset..<(offset + values.count), with: values)
        return copy
    }

    func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8((v >> (8 * UInt64($0))) & 0xFF) } }
    func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8((v >> (8 * UInt32($0))) & 0xFF) } }

    @Test func notELF() {
        #expect(refusal(Array("#!/bin/sh\necho hello\n".utf8)) == .notELF)
        #expect(refusal([]) == .truncated(what: "ELF identification", offset: 0, length: 16, fileSize: 0))
    }

    @Test func wrongMachineIsRefused() {
        var b = ELFBuilder()
        b.machine = 62 // x86-64
        _ = b.add(.init(name: "xdp", type: ELFBuilder.progbits, flags: ELFBuilder.exec, data: b.insn(0x95)))
        #expect(refusal(b.build()) == .wrongMachine(62))
        #expect(refusal(b.build())?.code == "not-bpf-machine")
    }

    @Test func elf32AndExecutablesAreRefused() {
        var b = ELFBuilder()
        b.elfClass = 1
        #expect(refusal(b.build()) == .notELF64(elfClass: 1))
        var exec = ELFBuilder()
        exec.type = 2
        #expect(refusal(exec.build()) == .notRelocatable(elfType: 2))
        #expect(refusal(patch(valid(), at: 5, [7])) == .badByteOrder(7))
    }

    @Test(arguments: [16, 20, 40, 63])
    func truncatedHeader(length: Int) {
        let error = refusal(Array(valid().prefix(length)))
        guard case .truncated? = error else {
            Issue.record("expected a truncation error, got \(String(describing: error))")
            return
        }
    }

    @Test func truncatedSectionTable() {
        let bytes = valid()
        let error = refusal(Array(bytes.prefix(bytes.count - 10)))
        #expect(error?.code == "elf-truncated")
    }

    @Test func sectionOffsetOutOfBounds() {
        var b = ELFBuilder()
        _ = b.add(.init(name: "xdp", type: ELFBuilder.progbits, flags: ELFBuilder.exec, data: b.insn(0x95), offsetOverride: 1 << 40))
        guard case let .sectionOutOfBounds(section, _, _, _)? = refusal(b.build()) else {
            Issue.record("expected sectionOutOfBounds")
            return
        }
        #expect(section == "xdp")
    }

    @Test func sectionSizeOverflowingOffset() {
        var b = ELFBuilder()
        _ = b.add(.init(name: "license", type: ELFBuilder.progbits, data: [0x47, 0], sizeOverride: UInt64.max - 10))
        #expect(refusal(b.build())?.code == "elf-section-out-of-bounds")
    }

    @Test func tenThousandSections() {
        var b = ELFBuilder()
        for i in 0..<10_000 { _ = b.add(.init(name: "s\(i)", type: ELFBuilder.progbits, data: [])) }
        var bytes = b.build()
        #expect(refusal(bytes) == .tooManySections(count: 10_002, limit: InspectionLimits().maxSections))
        // The same count through ELF extended numbering (e_shnum 0, the count in section 0).
        let shoff = Int(bytes[40]) | Int(bytes[41]) << 8 | Int(bytes[42]) << 16 | Int(bytes[43]) << 24
        bytes = patch(bytes, at: 60, [0, 0])                          // e_shnum = 0: count in section 0
        bytes = patch(bytes, at: shoff + 32, le64(10_002))
        #expect(refusal(bytes) == .tooManySections(count: 10_002, limit: InspectionLimits().maxSections))
        var generous = InspectionLimits()
        generous.maxSections = 20_000
        // With a higher limit the same file is parsed without trouble.
        #expect(throws: Never.self) { try BPFObjectInspector(limits: generous).inspect(bytes) }
    }

    @Test func sectionZeroIsIgnoredWhateverItSays() {
        var b = ELFBuilder()
        _ = b.add(.init(name: "xdp", type: ELFBuilder.progbits, flags: ELFBuilder.exec, data: b.insn(0x95)))
        var bytes = b.build()
        let shoff = Int(bytes[40]) | Int(bytes[41]) << 8 | Int(bytes[42]) << 16 | Int(bytes[43]) << 24
        bytes = patch(bytes, at: shoff + 4, le32(2))          // sh_type = SYMTAB
        bytes = patch(bytes, at: shoff + 32, le64(1 << 20))   // a large size
        bytes = patch(bytes, at: shoff + 56, le64(24))
        #expect(throws: Never.self) { try inspector.inspect(bytes) }
        bytes = patch(bytes, at: shoff + 4, le32(1))          // PROGBITS
        bytes = patch(bytes, at: shoff + 8, le64(6))          // executable
        #expect((try? inspector.inspect(bytes))?.programs.count == 1)
    }

    @Test func sectionHeaderOffsetNearTheTopOfTheAddressSpace() {
        var bytes = patch(valid(), at: 40, le64(0x7FFF_FFFF_FFFF_FFF0))
        bytes = patch(bytes, at: 60, [0, 0])
        #expect(refusal(bytes)?.code == "elf-truncated")
    }

    @Test func sectionNameTableIndexOutOfRange() {
        #expect(refusal(patch(valid(), at: 62, [0xF0, 0x00]))?.code == "elf-bad-header")
    }

    @Test func codeSectionNotWholeInstructions() {
        var b = ELFBuilder()
        _ = b.add(.init(name: "xdp", type: ELFBuilder.progbits, flags: ELFBuilder.exec, data: b.insn(0x95) + [1, 2, 3]))
        #expect(refusal(b.build()) == .badSection(section: "xdp", reason: "code size 11 is not a multiple of 8"))
    }

    @Test func symbolTableWithWrongEntrySize() {
        var b = ELFBuilder()
        _ = b.add(.init(name: ".symtab", type: ELFBuilder.symtab, data: [UInt8](repeating: 0, count: 48), link: 2, entrySize: 16))
        _ = b.add(.init(name: ".strtab", type: ELFBuilder.strtab, data: [0]))
        #expect(refusal(b.build())?.code == "elf-bad-symbol-table")
    }

    @Test func functionSymbolOutsideItsSection() {
        var b = ELFBuilder()
        let prog = b.add(.init(name: "xdp", type: ELFBuilder.progbits, flags: ELFBuilder.exec, data: b.insn(0x95)))
        let symbols = b.symbol(name: 0, info: 0, section: 0, value: 0, size: 0)
            + b.symbol(name: 1, info: 0x12, section: UInt16(prog), value: 800, size: 8)
        _ = b.add(.init(name: ".symtab", type: ELFBuilder.symtab, data: symbols, link: 3, entrySize: 24))
        _ = b.add(.init(name: ".strtab", type: ELFBuilder.strtab, data: Array("\0p\0".utf8)))
        #expect(refusal(b.build()) == .badSection(section: "xdp", reason: "function p lies outside the section"))
    }

    @Test func relocationNamingMissingSymbol() {
        var b = ELFBuilder()
        let prog = b.add(.init(name: "xdp", type: ELFBuilder.progbits, flags: ELFBuilder.exec, data: b.insn(0x95)))
        _ = b.add(.init(name: ".symtab", type: ELFBuilder.symtab, data: [UInt8](repeating: 0, count: 24), link: 3, entrySize: 24))
        _ = b.add(.init(name: ".strtab", type: ELFBuilder.strtab, data: [0]))
        _ = b.add(.init(name: ".relxdp", type: ELFBuilder.rel, data: b.rel(offset: 0, symbol: 99, type: 1), link: 2,
                        info: UInt32(prog), entrySize: 16))
        #expect(refusal(b.build())?.code == "elf-bad-section")
    }

    // MARK: BTF

    func btfObject(_ btf: [UInt8]) -> [UInt8] {
        var b = ELFBuilder()
        _ = b.add(.init(name: "xdp", type: ELFBuilder.progbits, flags: ELFBuilder.exec, data: b.insn(0x95)))
        _ = b.add(.init(name: ".BTF", type: ELFBuilder.progbits, data: btf))
        return b.build()
    }

    /// A BTF blob: header, then types, then strings.
    func btf(types: [UInt8], strings: [UInt8] = [0], typeLength: UInt32? = nil, stringLength: UInt32? = nil, magic: UInt16 = 0xEB9F) -> [UInt8] {
        [UInt8(magic & 0xFF), UInt8(magic >> 8), 1, 0] + le32(24) + le32(0) + le32(typeLength ?? UInt32(types.count))
            + le32(UInt32(types.count)) + le32(stringLength ?? UInt32(strings.count)) + types + strings
    }

    /// One BTF INT type, 4 bytes.
    var intType: [UInt8] { le32(0) + le32(0x0100_0000) + le32(4) + le32(32) }

    @Test func wellFormedBTFIsAccepted() throws {
        #expect(try inspector.inspect(btfObject(btf(types: intType))).hasBTF)
    }

    @Test func bogusBTFLengths() {
        #expect(refusal(btfObject(btf(types: intType, typeLength: 0xFFFF_FFF0)))?.code == "btf-invalid")
        #expect(refusal(btfObject(btf(types: intType, stringLength: 1 << 30)))?.code == "btf-invalid")
        #expect(refusal(btfObject(Array(btf(types: intType).prefix(10))))?.code == "btf-invalid")
    }

    @Test func btfWithWrongMagicOrByteOrder() {
        #expect(refusal(btfObject(btf(types: intType, magic: 0x1234))) == .badBTF("bad magic 0x1234"))
        #expect(refusal(btfObject(btf(types: intType, magic: 0x9FEB))) == .badBTF("byte order differs from the ELF file's"))
    }

    @Test func btfMembersBeyondTheSection() {
        // A struct claiming 60,000 members in a 12-byte type section.
        let structType = le32(0) + le32(0x0400_0000 | 60_000) + le32(8)
        #expect(refusal(btfObject(btf(types: structType)))?.code == "btf-invalid")
    }

    @Test func btfReferenceToMissingType() {
        let pointer = le32(0) + le32(0x0200_0000) + le32(77)
        #expect(refusal(btfObject(btf(types: pointer))) == .badBTF("type 1 refers to its target type 77, beyond the 1 types"))
    }

    @Test func btfUnknownKindAndBadStrings() {
        #expect(refusal(btfObject(btf(types: le32(0) + le32(0x1F00_0000) + le32(0))))?.code == "btf-invalid")
        let named = le32(500) + le32(0x0100_0000) + le32(4) + le32(32)
        #expect(refusal(btfObject(btf(types: named))) == .badBTF("string offset 500 is beyond the string section"))
    }

    @Test func btfExtWithImpossibleRecordCount() {
        var b = ELFBuilder()
        _ = b.add(.init(name: "xdp", type: ELFBuilder.progbits, flags: ELFBuilder.exec, data: b.insn(0x95)))
        _ = b.add(.init(name: ".BTF", type: ELFBuilder.progbits, data: btf(types: intType)))
        let funcInfo = le32(8) + le32(0) + le32(1_000_000) + le32(0) + le32(0)
        let ext: [UInt8] = [0x9F, 0xEB, 1, 0] + le32(32) + le32(0) + le32(UInt32(funcInfo.count)) + le32(0) + le32(0)
            + le32(0) + le32(0) + funcInfo
        _ = b.add(.init(name: ".BTF.ext", type: ELFBuilder.progbits, data: ext))
        #expect(refusal(b.build())?.code == "btf-ext-invalid")
    }

    /// libbpf's `__ulong(map_extra, N)` is an anonymous enum member whose value is N.
    @Test func enumValuedMapFields() throws {
        let strings = Array("\0int\0type\0map_extra\0m\0.maps\0".utf8)
        // name offsets: int 1, type 5, map_extra 10, m 20, .maps 22
        let types = le32(1) + le32(0x0100_0000) + le32(4) + le32(32)                 // 1: int
            + le32(0) + le32(0x0300_0000) + le32(0) + le32(1) + le32(1) + le32(2)     // 2: int[2]
            + le32(0) + le32(0x0200_0000) + le32(2)                                   // 3: int (*)[2]
            + le32(0) + le32(0x0600_0001) + le32(8) + le32(0) + le32(7)               // 4: enum { = 7 }
            + le32(0) + le32(0x0400_0002) + le32(16) + le32(5) + le32(3) + le32(0) + le32(10) + le32(4) + le32(64) // 5: struct
            + le32(20) + le32(0x0E00_0000) + le32(5) + le32(1)                        // 6: var m
            + le32(22) + le32(0x0F00_0001) + le32(0) + le32(6) + le32(0) + le32(16)   // 7: datasec .maps
        var b = ELFBuilder()
        _ = b.add(.init(name: "xdp", type: ELFBuilder.progbits, flags: ELFBuilder.exec, data: b.insn(0x95)))
        _ = b.add(.init(name: ".maps", type: ELFBuilder.progbits, data: [UInt8](repeating: 0, count: 16)))
        _ = b.add(.init(name: ".BTF", type: ELFBuilder.progbits, data: btf(types: types, strings: strings)))
        let report = try inspector.inspect(b.build())
        #expect(report.maps.map(\.name) == ["m"])
        #expect(report.maps.first?.type == "array")
    }

    @Test func btfExtWithoutBTF() {
        var b = ELFBuilder()
        _ = b.add(.init(name: ".BTF.ext", type: ELFBuilder.progbits, data: [UInt8](repeating: 0, count: 32)))
        #expect(refusal(b.build()) == .badBTFExt("present without a .BTF section"))
    }

    /// Every truncation and every single-byte corruption of a real object is refused or
    /// inspected, never a crash.
    @Test func everyPrefixAndByteFlipOfARealObject() throws {
        let original = try Fixtures.bytes("xdp-port-filter/port_filter.bpf.o")
        var refused = 0
        for length in stride(from: 0, to: original.count, by: max(1, original.count / 400)) {
            if refusal(Array(original.prefix(length))) != nil { refused += 1 }
        }
        #expect(refused > 0)
        for offset in stride(from: 0, to: original.count, by: max(1, original.count / 2000)) {
            var copy = original
            copy[offset] ^= 0xFF
            _ = refusal(copy)
        }
    }
}
