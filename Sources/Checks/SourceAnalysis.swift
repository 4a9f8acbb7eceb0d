/// Lexical analysis of C sources: each function's cyclomatic complexity, and runs of lines that
/// repeat. Comments, strings and character literals are blanked first, so nothing in them counts.
public enum SourceAnalysis {
    public struct Function: Sendable, Equatable {
        public var name: String
        /// The line its body starts on, from 1.
        public var line: Int
        /// 1 + the decision points in its body (`if`, `for`, `while`, `case`, `&&`, `||`, `?`).
        public var complexity: Int
    }

    public struct Repeat: Sendable, Equatable {
        public var first: (file: String, line: Int)
        public var second: (file: String, line: Int)
        public var lines: Int

        public static func == (a: Repeat, b: Repeat) -> Bool {
            a.first == b.first && a.second == b.second && a.lines == b.lines
        }
    }

    /// The text with comments, string and character literals replaced by spaces (newlines
    /// kept, so line numbers stay right).
    public static func blanked(_ text: String) -> [UInt8] {
        var bytes = Array(text.utf8)
        var index = 0
        func blank(_ at: Int) { if bytes[at] != UInt8(ascii: "\n") { bytes[at] = UInt8(ascii: " ") } }
        while index < bytes.count {
            let byte = bytes[index]
            let next = index + 1 < bytes.count ? bytes[index + 1] : 0
            if byte == UInt8(ascii: "/"), next == UInt8(ascii: "/") {
                while index < bytes.count, bytes[index] != UInt8(ascii: "\n") { blank(index); index += 1 }
            } else if byte == UInt8(ascii: "/"), next == UInt8(ascii: "*") {
                blank(index); blank(index + 1); index += 2
                while index < bytes.count, !(bytes[index] == UInt8(ascii: "*") && index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "/")) {
                    blank(index); index += 1
                }
                if index < bytes.count { blank(index); blank(index + 1); index += 2 }
            } else if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "'") {
                let quote = byte
                index += 1
                while index < bytes.count, bytes[index] != quote, bytes[index] != UInt8(ascii: "\n") {
                    if bytes[index] == UInt8(ascii: "\\"), index + 1 < bytes.count { blank(index); index += 1 }
                    blank(index); index += 1
                }
                index += 1
            } else {
                index += 1
            }
        }
        return bytes
    }

    /// Functions defined at file level: a name, a parenthesised parameter list, then a body in
    /// braces (preprocessor lines are skipped).
    public static func functions(_ text: String) -> [Function] {
        let bytes = blanked(text)
        var functions: [Function] = []
        var index = 0, line = 1, depth = 0
        var bodyStart = 0, bodyLine = 0, name = ""
        var lastIdentifier = "", identifierBeforeParen = "", closedParen = false
        var atLineStart = true
        func isIdentifier(_ byte: UInt8) -> Bool {
            (byte >= 0x61 && byte <= 0x7a) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x30 && byte <= 0x39) || byte == UInt8(ascii: "_")
        }
        var parens = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\n") { line += 1; atLineStart = true; index += 1; continue }
            if atLineStart, byte == UInt8(ascii: "#"), depth == 0 {
                // A preprocessor line, with its continuations.
                while index < bytes.count, bytes[index] != UInt8(ascii: "\n") || (index > 0 && bytes[index - 1] == UInt8(ascii: "\\")) {
                    if bytes[index] == UInt8(ascii: "\n") { line += 1 }
                    index += 1
                }
                continue
            }
            if byte != UInt8(ascii: " "), byte != UInt8(ascii: "\t") { atLineStart = false }
            if isIdentifier(byte) {
                var end = index
                while end < bytes.count, isIdentifier(bytes[end]) { end += 1 }
                lastIdentifier = String(decoding: bytes[index..<end], as: UTF8.self)
                if depth == 0, parens == 0 { closedParen = false }
                index = end
                continue
            }
            switch byte {
            case UInt8(ascii: "("):
                if depth == 0, parens == 0 { identifierBeforeParen = lastIdentifier }
                parens += 1
            case UInt8(ascii: ")"):
                parens = max(0, parens - 1)
                if depth == 0, parens == 0 { closedParen = true }
            case UInt8(ascii: ";"):
                if depth == 0 { closedParen = false }
            case UInt8(ascii: "{"):
                if depth == 0 {
                    name = closedParen ? identifierBeforeParen : ""
                    bodyStart = index
                    bodyLine = line
                }
                depth += 1
            case UInt8(ascii: "}"):
                depth = max(0, depth - 1)
                if depth == 0, !name.isEmpty {
                    functions.append(Function(name: name, line: bodyLine, complexity: complexity(bytes[bodyStart...index])))
                    name = ""
                }
                if depth == 0 { closedParen = false }
            default:
                break
            }
            index += 1
        }
        return functions
    }

    static func complexity(_ body: ArraySlice<UInt8>) -> Int {
        var count = 1
        var index = body.startIndex
        func isIdentifier(_ byte: UInt8) -> Bool {
            (byte >= 0x61 && byte <= 0x7a) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x30 && byte <= 0x39) || byte == UInt8(ascii: "_")
        }
        while index < body.endIndex {
            let byte = body[index]
            if isIdentifier(byte) {
                var end = index
                while end < body.endIndex, isIdentifier(body[end]) { end += 1 }
                let word = String(decoding: body[index..<end], as: UTF8.self)
                if ["if", "for", "while", "case"].contains(word) { count += 1 }
                index = end
                continue
            }
            let next = index + 1 < body.endIndex ? body[index + 1] : 0
            if (byte == UInt8(ascii: "&") && next == UInt8(ascii: "&")) || (byte == UInt8(ascii: "|") && next == UInt8(ascii: "|")) {
                count += 1
                index += 2
                continue
            }
            if byte == UInt8(ascii: "?") { count += 1 }
            index += 1
        }
        return count
    }

    /// Runs of at least `minimum` lines (blank lines and lone braces aside, whitespace
    /// ignored) that appear twice, within a file or across files; each repeat once, longest
    /// first found.
    public static func repeats(_ files: [(path: String, text: String)], minimum: Int = 8) -> [Repeat] {
        struct Line { var file: Int; var number: Int; var text: String }
        var sequences: [[Line]] = []
        for (fileIndex, file) in files.enumerated() {
            let blankedText = String(decoding: blanked(file.text), as: UTF8.self)
            var lines: [Line] = []
            for (offset, raw) in blankedText.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let text = raw.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ")
                if text.isEmpty || text == "{" || text == "}" || text == "};" { continue }
                lines.append(Line(file: fileIndex, number: offset + 1, text: text))
            }
            sequences.append(lines)
        }
        var seen: [String: (Int, Int)] = [:]
        var found: [Repeat] = []
        var covered: Set<String> = []
        for (fileIndex, lines) in sequences.enumerated() where lines.count >= minimum {
            var start = 0
            while start + minimum <= lines.count {
                let key = lines[start..<(start + minimum)].map(\.text).joined(separator: "\n")
                if let (otherFile, otherStart) = seen[key], !covered.contains("\(fileIndex):\(start)"),
                   otherFile != fileIndex || otherStart + minimum <= start {
                    // Extend the repeat as far as it goes.
                    let other = sequences[otherFile]
                    var length = minimum
                    while start + length < lines.count, otherStart + length < other.count,
                          otherFile != fileIndex || otherStart + length < start,
                          lines[start + length].text == other[otherStart + length].text {
                        length += 1
                    }
                    found.append(Repeat(first: (files[otherFile].path, other[otherStart].number),
                                        second: (files[fileIndex].path, lines[start].number), lines: length))
                    for offset in 0..<length { covered.insert("\(fileIndex):\(start + offset)") }
                    start += length
                    continue
                }
                if seen[key] == nil { seen[key] = (fileIndex, start) }
                start += 1
            }
        }
        return found
    }
}
