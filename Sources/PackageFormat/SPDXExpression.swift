/// Syntax of SPDX license expressions: identifiers joined by AND / OR, an optional
/// `WITH exception`, a trailing `+`, and parentheses.
public enum SPDXExpression {
    /// Why `text` is not an SPDX license expression, or nil when it is one.
    public static func problem(_ text: String) -> String? {
        var tokens: [String] = []
        var current = ""
        for character in text {
            if character == "(" || character == ")" || character == " " {
                if !current.isEmpty { tokens.append(current); current = "" }
                if character != " " { tokens.append(String(character)) }
            } else {
                current.append(character)
            }
        }
        if !current.isEmpty { tokens.append(current) }
        guard !tokens.isEmpty else { return "the license expression is empty" }
        var index = 0
        func isIdentifier(_ token: String) -> Bool {
            let body = token.hasSuffix("+") ? String(token.dropLast()) : token
            return !body.isEmpty && body.utf8.allSatisfy { $0.isASCIIAlphanumeric || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }
                && !["AND", "OR", "WITH"].contains(body)
        }
        func expression(_ depth: Int) -> String? {
            guard depth < 16 else { return "parentheses nest too deeply" }
            while true {
                guard index < tokens.count else { return "the expression ends where a license is expected" }
                if tokens[index] == "(" {
                    index += 1
                    if let problem = expression(depth + 1) { return problem }
                    guard index < tokens.count, tokens[index] == ")" else { return "a '(' is not closed" }
                    index += 1
                } else if isIdentifier(tokens[index]) {
                    index += 1
                    if index < tokens.count, tokens[index] == "WITH" {
                        index += 1
                        guard index < tokens.count, isIdentifier(tokens[index]) else { return "WITH must be followed by an exception id" }
                        index += 1
                    }
                } else {
                    return "\"\(tokens[index])\" is not a license identifier"
                }
                guard index < tokens.count, tokens[index] == "AND" || tokens[index] == "OR" else { return nil }
                index += 1
            }
        }
        if let problem = expression(0) { return problem }
        return index == tokens.count ? nil : "unexpected \"\(tokens[index])\""
    }
}
