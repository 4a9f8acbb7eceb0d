/// Numbers, special floats and date-times, the TOML values that are not strings or containers.
enum TOMLScalar {
    static func number(_ parser: inout TOMLParser) throws(TOMLError) -> TOMLValue {
        let (text, start) = parser.scalarToken()
        guard !text.isEmpty else { throw parser.error("expected a value", at: start) }
        if let value = parse(text) { return value }
        throw parser.error("\"\(text)\" is not a valid TOML value (strings need quotes)", at: start)
    }

    static func parse(_ text: String) -> TOMLValue? {
        switch text {
        case "inf", "+inf": return .float(.infinity)
        case "-inf": return .float(-.infinity)
        case "nan", "+nan", "-nan": return .float(.nan)
        default: break
        }
        if isDateTime(text) { return .datetime(text) }
        var body = Substring(text), negative = false
        if let sign = body.first, sign == "+" || sign == "-" {
            negative = sign == "-"
            body = body.dropFirst()
        }
        for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] where body.hasPrefix(prefix) {
            guard text.first != "+", text.first != "-" else { return nil }
            let digits = body.dropFirst(2)
            guard let clean = underscored(digits, allowed: { $0.isHexDigit && Int(String($0), radix: radix) != nil }) else { return nil }
            return Int64(clean, radix: radix).map(TOMLValue.integer)
        }
        if body.allSatisfy({ $0.isASCIIDigit || $0 == "_" }) {
            guard let clean = underscored(body, allowed: \.isASCIIDigit) else { return nil }
            guard clean.count == 1 || clean.first != "0" else { return nil }
            return Int64((negative ? "-" : "") + clean).map(TOMLValue.integer)
        }
        return float(body, negative: negative)
    }

    /// Digits with single underscores only between digits, returned without them.
    private static func underscored(_ text: Substring, allowed: (Character) -> Bool) -> String? {
        guard let first = text.first, let last = text.last, allowed(first), allowed(last) else { return nil }
        var previousUnderscore = false
        for c in text {
            if c == "_" {
                if previousUnderscore { return nil }
                previousUnderscore = true
            } else {
                guard allowed(c) else { return nil }
                previousUnderscore = false
            }
        }
        return String(text.filter { $0 != "_" })
    }

    private static func float(_ body: Substring, negative: Bool) -> TOMLValue? {
        // integer part, optional fraction, optional exponent; each part needs digits.
        var integer = body, exponent: Substring?
        if let e = body.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            integer = body[..<e]
            exponent = body[body.index(after: e)...]
        }
        var fraction: Substring?
        if let dot = integer.firstIndex(of: ".") {
            fraction = integer[integer.index(after: dot)...]
            integer = integer[..<dot]
        }
        guard fraction != nil || exponent != nil else { return nil }
        guard let intDigits = underscored(integer, allowed: \.isASCIIDigit), intDigits.count == 1 || intDigits.first != "0" else { return nil }
        var literal = (negative ? "-" : "") + intDigits
        if let fraction {
            guard let digits = underscored(fraction, allowed: \.isASCIIDigit) else { return nil }
            literal += "." + digits
        }
        if var exponent {
            var sign = ""
            if let s = exponent.first, s == "+" || s == "-" { sign = String(s); exponent = exponent.dropFirst() }
            guard let digits = underscored(exponent, allowed: \.isASCIIDigit) else { return nil }
            literal += "e" + sign + digits
        }
        return Double(literal).map(TOMLValue.float)
    }

    /// RFC 3339 shapes TOML 1.0 allows (dates, times with seconds, local and offset date-times),
    /// with every field in range.
    private static func isDateTime(_ text: String) -> Bool {
        let b = Array(text.utf8)
        func number(_ start: Int, _ count: Int, max: Int, min: Int = 0) -> Bool {
            guard start + count <= b.count, (start..<(start + count)).allSatisfy({ (0x30...0x39).contains(b[$0]) }) else { return false }
            let value = (start..<(start + count)).reduce(0) { $0 * 10 + Int(b[$1] - 0x30) }
            return (min...max).contains(value)
        }
        func at(_ i: Int, _ c: UInt8) -> Bool { i < b.count && b[i] == c }
        func time(_ s: Int) -> Int? {
            guard number(s, 2, max: 23), at(s + 2, 0x3A), number(s + 3, 2, max: 59), at(s + 5, 0x3A), number(s + 6, 2, max: 60) else {
                return nil
            }
            var end = s + 8
            if at(end, 0x2E) {
                end += 1
                let fractionStart = end
                while end < b.count, (0x30...0x39).contains(b[end]) { end += 1 }
                guard end > fractionStart else { return nil }
            }
            return end
        }
        if let end = time(0) { return end == b.count }
        guard number(0, 4, max: 9999), at(4, 0x2D), number(5, 2, max: 12, min: 1), at(7, 0x2D), number(8, 2, max: 31, min: 1) else {
            return false
        }
        if b.count == 10 { return true }
        guard at(10, 0x54) || at(10, 0x74) || at(10, 0x20), var end = time(11) else { return false }
        if at(end, 0x5A) || at(end, 0x7A) {
            end += 1
        } else if at(end, 0x2B) || at(end, 0x2D) {
            guard number(end + 1, 2, max: 23), at(end + 3, 0x3A), number(end + 4, 2, max: 59) else { return false }
            end += 6
        }
        return end == b.count
    }
}
