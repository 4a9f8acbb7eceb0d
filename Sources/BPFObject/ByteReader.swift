/// Bounds-checked, endian-aware reads from a byte buffer.
///
/// Every read names what it was reading so that a refusal says which structure of a hostile
/// file was out of bounds.
struct ByteReader: Sendable {
    let bytes: [UInt8]
    let littleEndian: Bool

    init(_ bytes: [UInt8], littleEndian: Bool = true) {
        self.bytes = bytes
        self.littleEndian = littleEndian
    }

    var count: Int { bytes.count }

    /// Checks that `length` bytes at `offset` lie inside the buffer.
    func check(_ offset: Int, _ length: Int, _ what: @autoclosure () -> String) throws(BPFObjectError) {
        guard offset >= 0, length >= 0, offset <= bytes.count, length <= bytes.count - offset else {
            throw .truncated(what: what(), offset: offset, length: length, fileSize: bytes.count)
        }
    }

    func u8(_ offset: Int, _ what: @autoclosure () -> String) throws(BPFObjectError) -> UInt8 {
        try check(offset, 1, what())
        return bytes[offset]
    }

    func u16(_ offset: Int, _ what: @autoclosure () -> String) throws(BPFObjectError) -> UInt16 {
        try check(offset, 2, what())
        return unchecked16(offset)
    }

    func u32(_ offset: Int, _ what: @autoclosure () -> String) throws(BPFObjectError) -> UInt32 {
        try check(offset, 4, what())
        return unchecked32(offset)
    }

    func u64(_ offset: Int, _ what: @autoclosure () -> String) throws(BPFObjectError) -> UInt64 {
        try check(offset, 8, what())
        let a = UInt64(unchecked32(offset)), b = UInt64(unchecked32(offset + 4))
        return littleEndian ? a | (b << 32) : (a << 32) | b
    }

    func unchecked16(_ offset: Int) -> UInt16 {
        let a = UInt16(bytes[offset]), b = UInt16(bytes[offset + 1])
        return littleEndian ? a | (b << 8) : (a << 8) | b
    }

    func unchecked32(_ offset: Int) -> UInt32 {
        let b0 = UInt32(bytes[offset]), b1 = UInt32(bytes[offset + 1])
        let b2 = UInt32(bytes[offset + 2]), b3 = UInt32(bytes[offset + 3])
        return littleEndian
            ? b0 | (b1 << 8) | (b2 << 16) | (b3 << 24)
            : (b0 << 24) | (b1 << 16) | (b2 << 8) | b3
    }

    /// A NUL-terminated string starting at `offset` and ending before `end`.
    func cString(_ offset: Int, end: Int, _ what: @autoclosure () -> String) throws(BPFObjectError) -> String {
        let end = min(end, bytes.count)
        guard offset >= 0, offset < end else {
            throw .truncated(what: what(), offset: offset, length: 1, fileSize: bytes.count)
        }
        var index = offset
        while index < end, bytes[index] != 0 { index += 1 }
        guard index < end else {
            throw .truncated(what: what() + " (no terminating NUL)", offset: offset, length: end - offset, fileSize: bytes.count)
        }
        return String(decoding: bytes[offset..<index], as: UTF8.self)
    }

    func slice(_ offset: Int, _ length: Int, _ what: @autoclosure () -> String) throws(BPFObjectError) -> ArraySlice<UInt8> {
        try check(offset, length, what())
        return bytes[offset..<(offset + length)]
    }
}

extension Int {
    /// Converts a 64-bit file quantity to `Int`, failing for values no file could hold.
    init(checked value: UInt64, _ what: @autoclosure () -> String, fileSize: Int) throws(BPFObjectError) {
        guard value <= UInt64(Int.max) else {
            throw .truncated(what: what(), offset: Int.max, length: 0, fileSize: fileSize)
        }
        self = Int(value)
    }
}
