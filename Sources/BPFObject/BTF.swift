/// BPF Type Format: the type information clang emits in the `.BTF` section.
///
/// Parsing is strict: every record must fit inside the type section, every type and string
/// reference must resolve, and counts are bounded, so bogus lengths are refused rather than
/// trusted.
struct BTF: Sendable {
    enum Kind: UInt8, Sendable {
        case int = 1, pointer, array, structure, union, enumeration, forward, typedef
        case volatile, const, restrict, function, functionProto, variable, dataSection
        case float, declTag, typeTag, enum64
    }

    struct Member: Sendable {
        let name: String
        let type: UInt32
        let offset: UInt32
    }

    struct SectionVariable: Sendable {
        let type: UInt32
        let offset: UInt32
        let size: UInt32
    }

    struct TypeRecord: Sendable {
        let kind: Kind
        let name: String
        let vlen: Int
        /// `size` for sized kinds, `type` for reference kinds.
        let sizeOrType: UInt32
        var members: [Member] = []
        var arrayElement: UInt32 = 0
        var arrayCount: UInt32 = 0
        var sectionVariables: [SectionVariable] = []
        /// Values of an enum's enumerators, in order.
        var enumValues: [Int64] = []
    }

    static let magic: UInt16 = 0xEB9F
    /// Index 0 is `void`; real types start at 1.
    let types: [TypeRecord?]
    let strings: ArraySlice<UInt8>

    init(_ data: ArraySlice<UInt8>, littleEndian: Bool, limits: InspectionLimits) throws(BPFObjectError) {
        let r = ByteReader(Array(data), littleEndian: littleEndian)
        guard r.count >= 24 else { throw .badBTF("header needs 24 bytes, the section has \(r.count)") }
        let magic = r.unchecked16(0)
        guard magic == Self.magic else {
            throw magic == Self.magic.byteSwapped
                ? .badBTF("byte order differs from the ELF file's")
                : .badBTF("bad magic 0x\(String(magic, radix: 16))")
        }
        guard r.bytes[2] == 1 else { throw .badBTF("unsupported version \(r.bytes[2])") }
        let headerLength = Int(r.unchecked32(4))
        let typeOffset = Int(r.unchecked32(8)), typeLength = Int(r.unchecked32(12))
        let stringOffset = Int(r.unchecked32(16)), stringLength = Int(r.unchecked32(20))
        guard headerLength >= 24, headerLength <= r.count else { throw .badBTF("header length \(headerLength) is out of range") }
        let available = r.count - headerLength
        guard typeOffset <= available, typeLength <= available - typeOffset else {
            throw .badBTF("type section (offset \(typeOffset), length \(typeLength)) exceeds the \(available) bytes after the header")
        }
        guard stringOffset <= available, stringLength <= available - stringOffset else {
            throw .badBTF("string section (offset \(stringOffset), length \(stringLength)) exceeds the \(available) bytes after the header")
        }
        guard typeLength % 4 == 0 else { throw .badBTF("type section length \(typeLength) is not a multiple of 4") }
        let stringStart = headerLength + stringOffset
        strings = r.bytes[stringStart..<(stringStart + stringLength)]
        guard stringLength == 0 || strings.last == 0 else { throw .badBTF("string section does not end with NUL") }

        var parsed: [TypeRecord?] = [nil]
        var cursor = headerLength + typeOffset
        let end = cursor + typeLength
        while cursor < end {
            guard parsed.count <= limits.maxBTFTypes else { throw .badBTF("more than \(limits.maxBTFTypes) types") }
            guard end - cursor >= 12 else { throw .badBTF("type \(parsed.count) is truncated") }
            let nameOffset = r.unchecked32(cursor)
            let info = r.unchecked32(cursor + 4)
            let sizeOrType = r.unchecked32(cursor + 8)
            let rawKind = UInt8((info >> 24) & 0x1F)
            guard let kind = Kind(rawValue: rawKind) else { throw .badBTF("type \(parsed.count) has unknown kind \(rawKind)") }
            let vlen = Int(info & 0xFFFF)
            cursor += 12
            let extra = Self.trailingSize(kind: kind, vlen: vlen)
            guard extra <= end - cursor else {
                throw .badBTF("type \(parsed.count) (\(kind)) declares \(extra) bytes of members, only \(end - cursor) remain")
            }
            var record = TypeRecord(kind: kind, name: try Self.string(strings, nameOffset), vlen: vlen, sizeOrType: sizeOrType)
            switch kind {
            case .array:
                record.arrayElement = r.unchecked32(cursor)
                record.arrayCount = r.unchecked32(cursor + 8)
            case .structure, .union:
                record.members.reserveCapacity(vlen)
                for i in 0..<vlen {
                    let base = cursor + i * 12
                    record.members.append(Member(name: try Self.string(strings, r.unchecked32(base)),
                                                 type: r.unchecked32(base + 4), offset: r.unchecked32(base + 8)))
                }
            case .enumeration:
                for i in 0..<vlen { record.enumValues.append(Int64(Int32(bitPattern: r.unchecked32(cursor + i * 8 + 4)))) }
            case .enum64:
                for i in 0..<vlen {
                    let base = cursor + i * 12
                    record.enumValues.append(Int64(bitPattern: UInt64(r.unchecked32(base + 4)) | UInt64(r.unchecked32(base + 8)) << 32))
                }
            case .dataSection:
                for i in 0..<vlen {
                    let base = cursor + i * 12
                    record.sectionVariables.append(SectionVariable(type: r.unchecked32(base), offset: r.unchecked32(base + 4),
                                                                   size: r.unchecked32(base + 8)))
                }
            default:
                break
            }
            cursor += extra
            parsed.append(record)
        }
        types = parsed
        try validateReferences()
    }

    private static func trailingSize(kind: Kind, vlen: Int) -> Int {
        switch kind {
        case .int, .variable, .declTag: 4
        case .array: 12
        case .structure, .union, .dataSection, .enum64: vlen * 12
        case .enumeration, .functionProto: vlen * 8
        default: 0
        }
    }

    private static func string(_ strings: ArraySlice<UInt8>, _ offset: UInt32) throws(BPFObjectError) -> String {
        guard offset != 0 else { return "" }
        let start = strings.startIndex + Int(offset)
        guard start < strings.endIndex else { throw .badBTF("string offset \(offset) is beyond the string section") }
        guard let nul = strings[start...].firstIndex(of: 0) else { throw .badBTF("string at \(offset) is not terminated") }
        return String(decoding: strings[start..<nul], as: UTF8.self)
    }

    /// Strings from the BTF string section, for BTF.ext records that refer to them.
    func string(at offset: UInt32) throws(BPFObjectError) -> String { try Self.string(strings, offset) }

    private func validateReferences() throws(BPFObjectError) {
        let count = UInt32(types.count)
        for (id, record) in types.enumerated() {
            guard let record else { continue }
            func check(_ ref: UInt32, _ role: String) throws(BPFObjectError) {
                guard ref < count else { throw .badBTF("type \(id) refers to \(role) type \(ref), beyond the \(count - 1) types") }
            }
            switch record.kind {
            case .pointer, .typedef, .volatile, .const, .restrict, .function, .functionProto, .variable, .declTag, .typeTag:
                try check(record.sizeOrType, "its target")
            case .array:
                try check(record.arrayElement, "an element")
            case .structure, .union:
                for member in record.members { try check(member.type, "a member") }
            case .dataSection:
                for variable in record.sectionVariables { try check(variable.type, "a variable") }
            default:
                break
            }
        }
    }

    func type(_ id: UInt32) -> TypeRecord? {
        Int(id) < types.count ? types[Int(id)] : nil
    }

    /// Follows typedefs and qualifiers to the type they name.
    func resolve(_ id: UInt32) -> (id: UInt32, record: TypeRecord)? {
        var current = id
        for _ in 0..<64 {
            guard let record = type(current) else { return nil }
            switch record.kind {
            case .typedef, .volatile, .const, .restrict, .typeTag:
                current = record.sizeOrType
            default:
                return (current, record)
            }
        }
        return nil
    }

    /// The size in bytes of a type, or nil when it has none (void, functions) or is malformed.
    func size(of id: UInt32, depth: Int = 0) -> UInt64? {
        guard depth < 64, let (_, record) = resolve(id) else { return nil }
        switch record.kind {
        case .int, .structure, .union, .enumeration, .enum64, .dataSection, .float:
            return UInt64(record.sizeOrType)
        case .pointer:
            return 8
        case .array:
            guard let element = size(of: record.arrayElement, depth: depth + 1) else { return nil }
            let (total, overflow) = element.multipliedReportingOverflow(by: UInt64(record.arrayCount))
            return overflow ? nil : total
        default:
            return nil
        }
    }

    func dataSection(named name: String) -> TypeRecord? {
        types.lazy.compactMap { $0 }.first { $0.kind == .dataSection && $0.name == name }
    }
}
