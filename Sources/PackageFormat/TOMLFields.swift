/// Typed access to one TOML table while decoding a manifest, collecting every problem instead
/// of stopping at the first, and noticing keys nobody asked for.
struct TOMLFields {
    let table: TOMLTable
    let path: String
    private(set) var used: Set<String> = []
    var findings: [Finding] = []

    init(_ table: TOMLTable, path: String) {
        self.table = table
        self.path = path
    }

    func location(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    mutating func problem(_ key: String, _ message: String) {
        findings.append(Finding(.error, "manifest.invalid", message, at: location(key)))
    }

    private mutating func raw(_ key: String) -> TOMLValue? {
        used.insert(key)
        return table[key]
    }

    mutating func string(_ key: String, required: Bool = false) -> String? {
        switch raw(key) {
        case let .string(value)?: return value
        case nil:
            if required { problem(key, "\(location(key)) is required") }
            return nil
        case let other?:
            problem(key, "\(location(key)) must be a string, not \(other.typeName)")
            return nil
        }
    }

    mutating func strings(_ key: String, required: Bool = false) -> [String] {
        switch raw(key) {
        case let .array(items)?:
            var result: [String] = []
            for (i, item) in items.enumerated() {
                guard case let .string(value) = item else {
                    problem(key, "\(location(key))[\(i)] must be a string, not \(item.typeName)")
                    continue
                }
                result.append(value)
            }
            if required && items.isEmpty { problem(key, "\(location(key)) must not be empty") }
            return result
        case nil:
            if required { problem(key, "\(location(key)) is required") }
            return []
        case let other?:
            problem(key, "\(location(key)) must be an array of strings, not \(other.typeName)")
            return []
        }
    }

    mutating func bool(_ key: String) -> Bool? {
        switch raw(key) {
        case let .boolean(value)?: return value
        case nil: return nil
        case let other?:
            problem(key, "\(location(key)) must be true or false, not \(other.typeName)")
            return nil
        }
    }

    /// An integer, also accepted as a string of digits (L3AFD map keys are often written so).
    mutating func integer(_ key: String, required: Bool = false) -> Int64? {
        switch raw(key) {
        case let .integer(value)?: return value
        case let .string(text)? where Int64(text) != nil: return Int64(text)
        case nil:
            if required { problem(key, "\(location(key)) is required") }
            return nil
        case let other?:
            problem(key, "\(location(key)) must be an integer, not \(other.typeName)")
            return nil
        }
    }

    mutating func table(_ key: String) -> TOMLTable? {
        switch raw(key) {
        case let .table(value)?: return value
        case nil: return nil
        case let other?:
            problem(key, "\(location(key)) must be a table, not \(other.typeName)")
            return nil
        }
    }

    mutating func tables(_ key: String) -> [TOMLTable] {
        switch raw(key) {
        case let .array(items)?:
            var result: [TOMLTable] = []
            for (i, item) in items.enumerated() {
                guard case let .table(value) = item else {
                    problem(key, "\(location(key))[\(i)] must be a table, not \(item.typeName)")
                    continue
                }
                result.append(value)
            }
            return result
        case nil: return []
        case let other?:
            problem(key, "\(location(key)) must be an array of tables, not \(other.typeName)")
            return []
        }
    }

    /// A table of string values (L3AFD's start_args and friends).
    mutating func stringMap(_ key: String) -> [String: String] {
        guard let table = table(key) else { return [:] }
        var result: [String: String] = [:]
        for name in table.keys {
            switch table[name]! {
            case let .string(value): result[name] = value
            case let .integer(value): result[name] = String(value)
            case let .boolean(value): result[name] = String(value)
            case let other: problem(key, "\(location(key)).\(name) must be a string, not \(other.typeName)")
            }
        }
        return result
    }

    /// Warnings for keys the schema does not know, so typos do not pass silently.
    mutating func finish() -> [Finding] {
        for key in table.keys where !used.contains(key) {
            findings.append(Finding(.warning, "manifest.unknown-key", "unknown key \(location(key)) is ignored", at: location(key)))
        }
        return findings
    }
}
