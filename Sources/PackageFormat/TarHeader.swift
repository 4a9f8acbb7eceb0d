/// The 512-byte ustar header block: decoding with checksum verification, and deterministic encoding.
struct TarHeader {
    static let blockSize = 512

    var name: String
    var mode: UInt32
    var size: UInt64
    var mtime: UInt64
    var typeflag: UInt8
    var linkName: String

    // MARK: Decoding

    static func decode(_ block: UnsafeRawBufferPointer) throws(ArchiveError) -> TarHeader {
        let provisional = string(block, 0, 100)
        let label = provisional.isEmpty ? nil : provisional
        var unsigned: UInt64 = 0, signed: Int64 = 0
        for (i, byte) in block.enumerated() {
            let value = (148..<156).contains(i) ? UInt8(ascii: " ") : byte
            unsigned += UInt64(value)
            signed += Int64(Int8(bitPattern: value))
        }
        let stored = try number(block, 148, 8, field: "checksum", entry: label)
        guard stored == unsigned || Int64(stored) == signed else {
            throw .badHeader(entry: label, reason: "checksum mismatch (stored \(stored), computed \(unsigned))")
        }
        var name = provisional
        let magic = string(block, 257, 6)
        if magic == "ustar" {
            let prefix = string(block, 345, 155)
            if !prefix.isEmpty { name = prefix + "/" + name }
        }
        return TarHeader(name: name,
                         mode: UInt32(truncatingIfNeeded: try number(block, 100, 8, field: "mode", entry: label)),
                         size: try number(block, 124, 12, field: "size", entry: label),
                         mtime: try number(block, 136, 12, field: "mtime", entry: label),
                         typeflag: block[156], linkName: string(block, 157, 100))
    }

    private static func string(_ block: UnsafeRawBufferPointer, _ offset: Int, _ length: Int) -> String {
        let field = block[offset..<(offset + length)]
        let end = field.firstIndex(of: 0) ?? field.endIndex
        return String(decoding: field[field.startIndex..<end], as: UTF8.self)
    }

    /// An octal field, or GNU base-256 when the high bit of the first byte is set.
    static func number(_ block: UnsafeRawBufferPointer, _ offset: Int, _ length: Int,
                       field: String, entry: String?) throws(ArchiveError) -> UInt64 {
        if block[offset] & 0x80 != 0 {
            guard block[offset] == 0x80 else { throw .badHeader(entry: entry, reason: "negative or huge \(field)") }
            var value: UInt64 = 0
            for i in (offset + 1)..<(offset + length) {
                guard value >> 56 == 0 else { throw .badHeader(entry: entry, reason: "\(field) is too large") }
                value = value << 8 | UInt64(block[i])
            }
            return value
        }
        var value: UInt64 = 0
        var digits = 0
        var index = offset
        let end = offset + length
        while index < end, block[index] == UInt8(ascii: " ") { index += 1 }
        while index < end, (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(block[index]) {
            guard value >> 60 == 0 else { throw .badHeader(entry: entry, reason: "\(field) is too large") }
            value = value * 8 + UInt64(block[index] - UInt8(ascii: "0"))
            digits += 1
            index += 1
        }
        while index < end {
            guard block[index] == 0 || block[index] == UInt8(ascii: " ") else {
                throw .badHeader(entry: entry, reason: "\(field) is not an octal number")
            }
            index += 1
        }
        return value
    }

    // MARK: Encoding

    /// Encodes one block. Names that do not fit ustar's fields are the caller's business (pax).
    func encode() -> [UInt8] {
        var block = [UInt8](repeating: 0, count: Self.blockSize)
        func put(_ text: String, _ offset: Int, _ length: Int) {
            for (i, byte) in text.utf8.prefix(length).enumerated() { block[offset + i] = byte }
        }
        func octal(_ value: UInt64, _ offset: Int, _ length: Int) {
            let digits = String(value, radix: 8)
            put(String(repeating: "0", count: max(0, length - 1 - digits.count)) + digits, offset, length - 1)
        }
        let (prefix, shortName) = Self.split(name) ?? ("", String(decoding: name.utf8.prefix(100), as: UTF8.self))
        put(shortName, 0, 100)
        octal(UInt64(mode), 100, 8)
        octal(0, 108, 8)
        octal(0, 116, 8)
        octal(size, 124, 12)
        octal(mtime, 136, 12)
        block[156] = typeflag
        put(linkName, 157, 100)
        put("ustar", 257, 6)
        put("00", 263, 2)
        put(prefix, 345, 155)
        for i in 148..<156 { block[i] = UInt8(ascii: " ") }
        let sum = block.reduce(0) { $0 + UInt64($1) }
        let digits = String(sum, radix: 8)
        put(String(repeating: "0", count: 6 - digits.count) + digits, 148, 6)
        block[154] = 0
        block[155] = UInt8(ascii: " ")
        return block
    }

    /// Splits a long name into ustar's prefix and name fields, if it can be.
    static func split(_ name: String) -> (String, String)? {
        let bytes = Array(name.utf8)
        if bytes.count <= 100 { return ("", name) }
        guard bytes.count <= 256 else { return nil }
        for i in stride(from: min(bytes.count - 1, 155), through: 1, by: -1) where bytes[i] == UInt8(ascii: "/") {
            let rest = bytes.count - i - 1
            if rest > 0, rest <= 100 {
                return (String(decoding: bytes[..<i], as: UTF8.self), String(decoding: bytes[(i + 1)...], as: UTF8.self))
            }
        }
        return nil
    }

    /// Whether the name needs a pax header to be stored whole.
    static func needsPax(_ name: String) -> Bool { split(name) == nil }

    /// A pax extended header record: "<length> <key>=<value>\n", where length counts itself.
    static func paxRecord(_ key: String, _ value: String) -> [UInt8] {
        let body = " \(key)=\(value)\n"
        var length = body.utf8.count + 1
        while String(length).utf8.count + body.utf8.count != length { length += 1 }
        return Array((String(length) + body).utf8)
    }
}
