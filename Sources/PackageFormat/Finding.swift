/// One thing inspection or a check found in a package, for a contributor or reviewer to act on.
public struct Finding: Codable, Sendable, Equatable, Hashable, CustomStringConvertible {
    public enum Severity: String, Codable, Sendable, Comparable {
        case error, warning, info

        private var rank: Int { self == .error ? 0 : self == .warning ? 1 : 2 }
        public static func < (a: Self, b: Self) -> Bool { a.rank < b.rank }
    }

    public var severity: Severity
    /// A stable identifier of what was checked, e.g. `manifest.entry-missing`.
    public var check: String
    public var message: String
    /// Where: a manifest key, a file in the package, or `object:program`.
    public var location: String?

    public init(_ severity: Severity, _ check: String, _ message: String, at location: String? = nil) {
        self.severity = severity
        self.check = check
        self.message = message
        self.location = location
    }

    public var description: String {
        "\(severity): \(message)" + (location.map { " [\($0)]" } ?? "") + " (\(check))"
    }
}

extension Array where Element == Finding {
    public var hasErrors: Bool { contains { $0.severity == .error } }
}
