/// TOML's four kinds of strings (basic, literal, and their multi-line forms) and escapes.
extension TOMLParser {

    mutating func basicString() throws(TOMLError) -> String {
        position += 1
        var out: [UInt8] = []
        while true {
            guard let byte = peek else { throw error("unterminated string") }
            position += 1
            switch byte {
            case UInt8(ascii: "\""): return try utf8(out)
            case UInt8(ascii: "\\"): try escape(into: &out)
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"): throw error("newline in a single-line string", at: position - 1)
            default:
                try checkControl(byte)
                out.append(byte)
            }
        }
    }

    mutating func multilineBasicString() throws(TOMLError) -> String {
        position += 3
        skipNewline()
        var out: [UInt8] = []
        while true {
            guard let byte = peek else { throw error("unterminated multi-line string") }
            if byte == UInt8(ascii: "\""), peek(1) == UInt8(ascii: "\""), peek(2) == UInt8(ascii: "\"") {
                // Up to two quotes may directly precede the closing delimiter.
                var extra = 0
                while extra < 2, peek(3 + extra) == UInt8(ascii: "\"") { extra += 1 }
                out.append(contentsOf: [UInt8](repeating: UInt8(ascii: "\""), count: extra))
                position += 3 + extra
                return try utf8(out)
            }
            position += 1
            if byte == UInt8(ascii: "\r"), peek != UInt8(ascii: "\n") { throw error("a carriage return must be followed by a newline") }
            if byte == UInt8(ascii: "\\") {
                // A backslash at the end of a line trims the newline and following whitespace.
                var look = position
                while look < bytes.count, bytes[look] == UInt8(ascii: " ") || bytes[look] == UInt8(ascii: "\t") { look += 1 }
                if look < bytes.count, bytes[look] == UInt8(ascii: "\n") || bytes[look] == UInt8(ascii: "\r") {
                    position = look
                    while let b = peek, [UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r")].contains(b) {
                        if b == UInt8(ascii: "\r"), peek(1) != UInt8(ascii: "\n") { throw error("a carriage return must be followed by a newline") }
                        position += 1
                    }
                    continue
                }
                try escape(into: &out)
            } else {
                if byte != UInt8(ascii: "\n"), byte != UInt8(ascii: "\r") { try checkControl(byte) }
                out.append(byte)
            }
        }
    }

    mutating func literalString() throws(TOMLError) -> String {
        position += 1
        let start = position
        while true {
            guard let byte = peek else { throw error("unterminated literal string") }
            if byte == UInt8(ascii: "'") { break }
            if byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") { throw error("newline in a single-line string") }
            try checkControl(byte)
            position += 1
        }
        defer { position += 1 }
        return try utf8(Array(bytes[start..<position]))
    }

    mutating func multilineLiteralString() throws(TOMLError) -> String {
        position += 3
        skipNewline()
        let start = position
        while true {
            guard let byte = peek else { throw error("unterminated multi-line literal string") }
            if byte == UInt8(ascii: "'"), peek(1) == UInt8(ascii: "'"), peek(2) == UInt8(ascii: "'") {
                var extra = 0
                while extra < 2, peek(3 + extra) == UInt8(ascii: "'") { extra += 1 }
                let text = try utf8(Array(bytes[start..<(position + extra)]))
                position += 3 + extra
                return text
            }
            if byte == UInt8(ascii: "\r"), peek(1) != UInt8(ascii: "\n") { throw error("a carriage return must be followed by a newline") }
            if byte != UInt8(ascii: "\n"), byte != UInt8(ascii: "\r") { try checkControl(byte) }
            position += 1
        }
    }

    private mutating func skipNewline() {
        if peek == UInt8(ascii: "\n") { position += 1 } else if peek == UInt8(ascii: "\r"), peek(1) == UInt8(ascii: "\n") { position += 2 }
    }

    private func checkControl(_ byte: UInt8) throws(TOMLError) {
        guard byte == UInt8(ascii: "\t") || (byte >= 0x20 && byte != 0x7F) else {
            throw error("control character 0x\(String(byte, radix: 16)) must be escaped", at: position - 1)
        }
    }

    private func utf8(_ raw: [UInt8]) throws(TOMLError) -> String {
        guard let text = String(validating: raw, as: UTF8.self) else { throw error("string is not valid UTF-8") }
        return text
    }

    private mutating func escape(into out: inout [UInt8]) throws(TOMLError) {
        guard let byte = peek else { throw error("unterminated escape sequence") }
        position += 1
        let simple: [UInt8: UInt8] = [UInt8(ascii: "b"): 8, UInt8(ascii: "t"): 9, UInt8(ascii: "n"): 10, UInt8(ascii: "f"): 12,
                                      UInt8(ascii: "r"): 13, UInt8(ascii: "\""): 34, UInt8(ascii: "\\"): 92]
        if let replacement = simple[byte] { out.append(replacement); return }
        let digits = byte == UInt8(ascii: "u") ? 4 : byte == UInt8(ascii: "U") ? 8 : 0
        guard digits > 0, position + digits <= bytes.count,
              bytes[position..<(position + digits)].allSatisfy({ $0.isASCIIAlphanumeric && Character(Unicode.Scalar($0)).isHexDigit }),
              let code = UInt32(String(decoding: bytes[position..<(position + digits)], as: UTF8.self), radix: 16),
              let scalar = Unicode.Scalar(code) else {
            throw error("invalid escape sequence", at: position - 2)
        }
        position += digits
        out.append(contentsOf: Array(String(Character(scalar)).utf8))
    }
}
