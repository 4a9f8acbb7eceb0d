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

    let bytes: [UInt8]
    var position = 0
    private var depth = 0

    private init(_ bytes: [UInt8]) { self.bytes = bytes }

    var peek: UInt8? { position < bytes.count ? bytes[position] : nil }
    func peek(_ ahead: Int) -> UInt8? { position + ahead < bytes.count ? bytes[position + ahead] : nil }

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
}
