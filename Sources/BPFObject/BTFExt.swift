/// The `.BTF.ext` section: per-instruction function, line and CO-RE relocation records.
///
/// Only the CO-RE relocation records are kept (which ELF section and which instruction each
/// applies to); the function and line records are validated for bounds.
struct BTFExt: Sendable {
    struct CORERelocation: Sendable {
        let section: String
        let instructionOffset: UInt32
        let kind: UInt32
    }

    let coreRelocations: [CORERelocation]
    let functionInfoCount: Int
    let lineInfoCount: Int

    init(_ data: ArraySlice<UInt8>, littleEndian: Bool, btf: BTF, limits: InspectionLimits) throws(BPFObjectError) {
        let r = ByteReader(Array(data), littleEndian: littleEndian)
        guard r.count >= 24 else { throw .badBTFExt("header needs 24 bytes, the section has \(r.count)") }
        guard r.unchecked16(0) == BTF.magic else { throw .badBTFExt("bad magic") }
        guard r.bytes[2] == 1 else { throw .badBTFExt("unsupported version \(r.bytes[2])") }
        let headerLength = Int(r.unchecked32(4))
        guard headerLength >= 24, headerLength <= r.count else { throw .badBTFExt("header length \(headerLength) is out of range") }

        func records(_ offsetField: Int, _ label: String, minimumRecordSize: Int,
                     _ body: (String, Int) throws(BPFObjectError) -> Void) throws(BPFObjectError) -> Int {
            let offset = Int(r.unchecked32(offsetField)), length = Int(r.unchecked32(offsetField + 4))
            guard length > 0 else { return 0 }
            let available = r.count - headerLength
            guard offset <= available, length <= available - offset else {
                throw .badBTFExt("\(label) (offset \(offset), length \(length)) exceeds the section")
            }
            var cursor = headerLength + offset
            let end = cursor + length
            guard length >= 4 else { throw .badBTFExt("\(label) is too short for its record size") }
            let recordSize = Int(r.unchecked32(cursor))
            guard recordSize >= minimumRecordSize, recordSize <= 1024 else {
                throw .badBTFExt("\(label) record size \(recordSize) is invalid")
            }
            cursor += 4
            var total = 0
            while cursor < end {
                guard end - cursor >= 8 else { throw .badBTFExt("\(label) block header is truncated") }
                let section = try btf.string(at: r.unchecked32(cursor))
                let count = Int(r.unchecked32(cursor + 4))
                cursor += 8
                guard count <= (end - cursor) / recordSize else {
                    throw .badBTFExt("\(label) for section \(section) declares \(count) records, more than fit")
                }
                total += count
                guard total <= limits.maxBTFExtRecords else { throw .badBTFExt("more than \(limits.maxBTFExtRecords) \(label) records") }
                for i in 0..<count { try body(section, cursor + i * recordSize) }
                cursor += count * recordSize
            }
            return total
        }

        functionInfoCount = try records(8, "function info", minimumRecordSize: 8) { _, _ throws(BPFObjectError) in }
        lineInfoCount = try records(16, "line info", minimumRecordSize: 16) { _, _ throws(BPFObjectError) in }
        var relocations: [CORERelocation] = []
        if headerLength >= 32 {
            _ = try records(24, "CO-RE relocation", minimumRecordSize: 16) { section, base throws(BPFObjectError) in
                relocations.append(CORERelocation(section: section, instructionOffset: r.unchecked32(base),
                                                  kind: r.unchecked32(base + 12)))
            }
        }
        coreRelocations = relocations
    }
}
