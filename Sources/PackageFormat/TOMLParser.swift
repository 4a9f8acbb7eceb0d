/// A strict TOML 1.0 parser for manifests people write by hand.
///
/// It builds a mutable tree while reading (so tables can be reopened as the specification
/// allows) and refuses everything the specification forbids: redefined keys and tables,
/// mixed-up arrays of tables, control characters, malformed numbers. Nesting is bounded.
public struct TOMLParser {
    public static let maxDepth = 32

    public static func parse(_ text: String) throws(TOMLError) -> TOMLTable {
        var parser = TOMLParser(Array(text.utf8))
        return try parser.document()
    }

    final class Table {
        enum Origin { case implicit, header, dotted, inline }
        var origin: Origin
        var order: [String] = []
        var entries: [String: Node] = [:]
        init(_ origin: Origin) { self.origin = origin }

        func value() -> TOMLValue {
            var table = TOMLTable()
            for key in order { table.set(key, entries[key]!.value()) }
            return .table(table)
        }
        func insert(_ key: String, _ node: Node) {
            order.append(key)
            entries[key] = node
        }
    }

    enum Node {
        case table(Table)
        case tableArray([Table])
        case value(TOMLValue)

        func value() -> TOMLValue {
            switch self {
            case let .table(table): table.value()
            case let .tableArray(tables): .array(tables.map { $0.value() })
            case let .value(value): value
            }
        }
    }

    private let bytes: [UInt8]
    private var position = 0
    private var depth = 0

    private init(_ bytes: [UInt8]) { self.bytes = bytes }

    private var peek: UInt8? { position < bytes.count ? bytes[position] : nil }
    private func peek(_ ahead: Int) -> UInt8? { position + ahead < bytes.count ? bytes[position + ahead] : nil }

    func error(_ message: String, at offset: Int? = nil) -> TOMLError {
        let offset = min(offset ?? position, bytes.count)
        var line = 1, lineStart = 0
        for i in 0..<offset where bytes[i] == UInt8(ascii: "\n") { line += 1; lineStart = i + 1 }
        return TOMLError(line: line, column: offset - lineStart + 1, message: message)
    }

    private mutating func document() throws(TOMLError) -> TOMLTable {
        let root = Table(.header)
        var current = root
        while true {
            skipWhitespace()
            guard let byte = peek else { break }
            switch byte {
            case UInt8(ascii: "#"), UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                try endOfLine()
                continue
            case UInt8(ascii: "["):
                current = try header(root)
            default:
                try keyValue(into: current)
            }
            try endOfLine()
        }
        guard case let .table(table) = root.value() else { return TOMLTable() }
        return table
    }

    // MARK: Lines and whitespace

    private mutating func skipWhitespace() {
        while let byte = peek, byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") { position += 1 }
    }

    /// Consumes optional whitespace, an optional comment and a newline (or the end).
    private mutating func endOfLine() throws(TOMLError) {
        skipWhitespace()
        if peek == UInt8(ascii: "#") {
            position += 1
            while let byte = peek, byte != UInt8(ascii: "\n") {
                if byte == UInt8(ascii: "\r"), peek(1) == UInt8(ascii: "\n") { break }
                guard byte == UInt8(ascii: "\t") || (byte >= 0x20 && byte != 0x7F) else {
                    throw error("control character 0x\(String(byte, radix: 16)) in a comment")
                }
                position += 1
            }
        }
        guard let byte = peek else { return }
        if byte == UInt8(ascii: "\n") { position += 1; return }
        if byte == UInt8(ascii: "\r"), peek(1) == UInt8(ascii: "\n") { position += 2; return }
        throw error("expected the end of the line, found '\(Character(Unicode.Scalar(byte)))'")
    }

    /// Whitespace, newlines and comments inside arrays.
    private mutating func skipBlank() throws(TOMLError) {
        while true {
            skipWhitespace()
            guard let byte = peek else { return }
            if byte == UInt8(ascii: "#") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") {
                try endOfLine()
            } else {
                return
            }
        }
    }

    // MARK: Tables

    private mutating func header(_ root: Table) throws(TOMLError) -> Table {
        let start = position
        position += 1
        let isArray = peek == UInt8(ascii: "[")
        if isArray { position += 1 }
        skipWhitespace()
        let path = try key()
        skipWhitespace()
        guard peek == UInt8(ascii: "]"), !isArray || peek(1) == UInt8(ascii: "]") else {
            throw error(isArray ? "expected ']]' to close the table header" : "expected ']' to close the table header")
        }
        position += isArray ? 2 : 1
        var table = root
        for (i, name) in path.dropLast().enumerated() {
            switch table.entries[name] {
            case nil:
                let created = Table(.implicit)
                table.insert(name, .table(created))
                table = created
            case let .table(existing)?:
                guard existing.origin != .inline else {
                    throw error("inline table \(path.prefix(i + 1).joined(separator: ".")) cannot be extended", at: start)
                }
                table = existing
            case let .tableArray(tables)?:
                table = tables[tables.count - 1]
            case .value?:
                throw error("\(path.prefix(i + 1).joined(separator: ".")) is already a value, not a table", at: start)
            }
        }
        let last = path[path.count - 1], dotted = path.joined(separator: ".")
        if isArray {
            let created = Table(.header)
            switch table.entries[last] {
            case nil: table.insert(last, .tableArray([created]))
            case .tableArray?:
                // Take the array out so appending does not copy it.
                guard case var .tableArray(tables)? = table.entries.removeValue(forKey: last) else { break }
                tables.append(created)
                table.entries[last] = .tableArray(tables)
            default: throw error("[[\(dotted)]] names something that is not an array of tables", at: start)
            }
            return created
        }
        switch table.entries[last] {
        case nil:
            let created = Table(.header)
            table.insert(last, .table(created))
            return created
        case let .table(existing)? where existing.origin == .implicit:
            existing.origin = .header
            return existing
        default:
            throw error("[\(dotted)] is defined more than once", at: start)
        }
    }

    private mutating func keyValue(into table: Table) throws(TOMLError) {
        let start = position
        let path = try key()
        skipWhitespace()
        guard peek == UInt8(ascii: "=") else { throw error("expected '=' after the key") }
        position += 1
        skipWhitespace()
        let value = try self.value()
        var target = table
        for (i, name) in path.dropLast().enumerated() {
            switch target.entries[name] {
            case nil:
                let created = Table(.dotted)
                target.insert(name, .table(created))
                target = created
            case let .table(existing)? where existing.origin == .dotted || existing.origin == .implicit:
                if existing.origin == .implicit { existing.origin = .dotted }
                target = existing
            default:
                throw error("\(path.prefix(i + 1).joined(separator: ".")) is already defined", at: start)
            }
        }
        let last = path[path.count - 1]
        guard target.entries[last] == nil else { throw error("key \(path.joined(separator: ".")) is defined more than once", at: start) }
        target.insert(last, value)
    }

    // MARK: Keys

    private mutating func key() throws(TOMLError) -> [String] {
        var parts: [String] = []
        while true {
            skipWhitespace()
            guard let byte = peek else { throw error("expected a key") }
            if byte == UInt8(ascii: "\"") {
                parts.append(try basicString())
            } else if byte == UInt8(ascii: "'") {
                parts.append(try literalString())
            } else {
                let start = position
                while let b = peek, b.isASCIIAlphanumeric || b == UInt8(ascii: "-") || b == UInt8(ascii: "_") { position += 1 }
                guard position > start else { throw error("expected a key, found '\(Character(Unicode.Scalar(byte)))'") }
                parts.append(String(decoding: bytes[start..<position], as: UTF8.self))
            }
            skipWhitespace()
            guard peek == UInt8(ascii: ".") else { return parts }
            guard parts.count < Self.maxDepth else { throw error("a key has more than \(Self.maxDepth) dotted parts") }
            position += 1
        }
    }

    // MARK: Values

    private mutating func value() throws(TOMLError) -> Node {
        guard let byte = peek else { throw error("expected a value") }
        switch byte {
        case UInt8(ascii: "\""):
            if peek(1) == UInt8(ascii: "\""), peek(2) == UInt8(ascii: "\"") { return .value(.string(try multilineBasicString())) }
            return .value(.string(try basicString()))
        case UInt8(ascii: "'"):
            if peek(1) == UInt8(ascii: "'"), peek(2) == UInt8(ascii: "'") { return .value(.string(try multilineLiteralString())) }
            return .value(.string(try literalString()))
        case UInt8(ascii: "["):
            return .value(try array())
        case UInt8(ascii: "{"):
            return .table(try inlineTable())
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            if matches("true") { position += 4; return .value(.boolean(true)) }
            if matches("false") { position += 5; return .value(.boolean(false)) }
            throw error("expected a value")
        default:
            return .value(try TOMLScalar.number(&self))
        }
    }

    func matches(_ word: String) -> Bool {
        let w = Array(word.utf8)
        guard position + w.count <= bytes.count, Array(bytes[position..<(position + w.count)]) == w else { return false }
        let after = peek(w.count)
        return after == nil || !(after!.isASCIIAlphanumeric || after == UInt8(ascii: "_") || after == UInt8(ascii: "-"))
    }

    /// The characters up to the next delimiter, for numbers and dates.
    mutating func scalarToken() -> (text: String, start: Int) {
        let start = position
        while let b = peek, !(b == UInt8(ascii: ",") || b == UInt8(ascii: "]") || b == UInt8(ascii: "}")
                                 || b == UInt8(ascii: "#") || b == UInt8(ascii: "\n") || b == UInt8(ascii: "\r")
                                 || b == UInt8(ascii: "\t")) {
            // A space separates a date from its time; anywhere else it ends the token.
            if b == UInt8(ascii: " ") {
                let isDateTimeSpace = position - start == 10 && (peek(1).map { (0x30...0x39).contains($0) } ?? false)
                if !isDateTimeSpace { break }
            }
            position += 1
        }
        return (String(decoding: bytes[start..<position], as: UTF8.self), start)
    }

    private mutating func array() throws(TOMLError) -> TOMLValue {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else { throw error("arrays and inline tables nest deeper than \(Self.maxDepth)") }
        position += 1
        var items: [TOMLValue] = []
        while true {
            try skipBlank()
            if peek == UInt8(ascii: "]") { position += 1; return .array(items) }
            items.append(try value().value())
            try skipBlank()
            if peek == UInt8(ascii: ",") { position += 1; continue }
            guard peek == UInt8(ascii: "]") else { throw error("expected ',' or ']' in the array") }
            position += 1
            return .array(items)
        }
    }

    private mutating func inlineTable() throws(TOMLError) -> Table {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else { throw error("arrays and inline tables nest deeper than \(Self.maxDepth)") }
        position += 1
        let table = Table(.inline)
        skipWhitespace()
        if peek == UInt8(ascii: "}") { position += 1; return table }
        while true {
            skipWhitespace()
            try keyValue(into: table)
            skipWhitespace()
            if peek == UInt8(ascii: ",") { position += 1; continue }
            guard peek == UInt8(ascii: "}") else { throw error("expected ',' or '}' in the inline table (inline tables stay on one line)") }
            position += 1
            freeze(table)
            return table
        }
    }

    private func freeze(_ table: Table) {
        table.origin = .inline
        for node in table.entries.values { if case let .table(child) = node { freeze(child) } }
    }

    // MARK: Strings

    private mutating func basicString() throws(TOMLError) -> String {
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

    private mutating func multilineBasicString() throws(TOMLError) -> String {
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

    private mutating func literalString() throws(TOMLError) -> String {
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

    private mutating func multilineLiteralString() throws(TOMLError) -> String {
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
