import PackageFormat

/// Writes raw tar streams with whatever headers a test wants, including ones no honest tool
/// would write, and gzips them.
public struct TarBuilder {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    public mutating func entry(_ name: String, type: Character = "0", content: [UInt8] = [], link: String = "",
                        mode: UInt32 = 0o644, size: UInt64? = nil, corruptChecksum: Bool = false) {
        var block = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, _ offset: Int, _ length: Int) {
            for (i, byte) in text.utf8.prefix(length).enumerated() { block[offset + i] = byte }
        }
        func octal(_ value: UInt64, _ offset: Int, _ length: Int) {
            let digits = String(value, radix: 8)
            put(String(repeating: "0", count: length - 1 - digits.count) + digits, offset, length - 1)
        }
        put(name, 0, 100)
        octal(UInt64(mode), 100, 8)
        octal(0, 108, 8)
        octal(0, 116, 8)
        octal(size ?? UInt64(content.count), 124, 12)
        octal(0, 136, 12)
        block[156] = type.asciiValue!
        put(link, 157, 100)
        put("ustar", 257, 6)
        put("00", 263, 2)
        for i in 148..<156 { block[i] = 0x20 }
        var sum = block.reduce(0) { $0 + UInt64($1) }
        if corruptChecksum { sum += 1 }
        put(String(repeating: "0", count: 6 - String(sum, radix: 8).count) + String(sum, radix: 8), 148, 6)
        block[154] = 0
        bytes += block
        bytes += content
        bytes += [UInt8](repeating: 0, count: (512 - content.count % 512) % 512)
    }

    public mutating func pax(_ records: [String: String]) {
        var body: [UInt8] = []
        for (key, value) in records.sorted(by: { $0.key < $1.key }) {
            let text = " \(key)=\(value)\n"
            var length = text.utf8.count + 1
            while String(length).utf8.count + text.utf8.count != length { length += 1 }
            body += Array((String(length) + text).utf8)
        }
        entry("PaxHeader", type: "x", content: body)
    }

    public mutating func end() { bytes += [UInt8](repeating: 0, count: 1024) }

    public func tar(ended: Bool = true) -> [UInt8] { ended ? bytes + [UInt8](repeating: 0, count: 1024) : bytes }

    public static func gzip(_ data: [UInt8]) throws -> [UInt8] {
        var out: [UInt8] = []
        let writer = try GzipWriter { out.append(contentsOf: $0) }
        try data.withUnsafeBytes { try writer.write($0) }
        try writer.finish()
        return out
    }
}
