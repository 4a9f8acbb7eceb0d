/// Rules for paths inside a package, shared by the manifest, the archive writer and reader.
public enum RelativePath {
    public static let maxLength = 1024
    public static let maxDepth = 32

    /// Why `path` is not a safe relative path, or nil when it is.
    public static func problem(_ path: String) -> String? {
        if path.isEmpty { return "the path is empty" }
        if path.utf8.count > maxLength { return "the path is longer than \(maxLength) bytes" }
        if path.hasPrefix("/") { return "the path is absolute" }
        if path.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) { return "the path contains control characters" }
        if path.contains("\\") { return "the path contains a backslash" }
        let components = path.split(separator: "/", omittingEmptySubsequences: false)
        if components.count > maxDepth { return "the path is nested deeper than \(maxDepth) levels" }
        for component in components {
            if component.isEmpty { return "the path has an empty component" }
            if component == ".." { return "the path leaves its directory (..)" }
            if component == "." { return "the path has a '.' component" }
            if component.utf8.count > 255 { return "a path component is longer than 255 bytes" }
        }
        return nil
    }

    public static func isSafe(_ path: String) -> Bool { problem(path) == nil }

    /// Whether `path` matches a glob `pattern` where `*` and `?` match within one component and
    /// `**` matches any number of components. Time is bounded by the product of the lengths.
    public static func matches(_ path: String, pattern: String) -> Bool {
        let parts = path.split(separator: "/").map { Array($0.utf8) }
        var globs: [[UInt8]] = []
        for component in pattern.split(separator: "/") {
            // Consecutive `**` match the same as one.
            if component == "**", globs.last == Array("**".utf8) { continue }
            globs.append(Array(component.utf8))
        }
        var failed = Set<Int>() // (path index, pattern index) pairs known not to match
        func match(_ p: Int, _ g: Int) -> Bool {
            let key = p * (globs.count + 1) + g
            if failed.contains(key) { return false }
            let result: Bool
            if g == globs.count {
                result = p == parts.count
            } else if globs[g] == Array("**".utf8) {
                result = (p...parts.count).contains { match($0, g + 1) }
            } else {
                result = p < parts.count && matchComponent(parts[p], globs[g]) && match(p + 1, g + 1)
            }
            if !result { failed.insert(key) }
            return result
        }
        return match(0, 0)
    }

    /// Wildcard matching within one component with a single backtrack point: O(n·m).
    private static func matchComponent(_ text: [UInt8], _ pattern: [UInt8]) -> Bool {
        var t = 0, p = 0
        var star: Int?, resume = 0
        while t < text.count {
            if p < pattern.count, pattern[p] == UInt8(ascii: "?") || pattern[p] == text[t] {
                t += 1
                p += 1
            } else if p < pattern.count, pattern[p] == UInt8(ascii: "*") {
                star = p
                resume = t
                p += 1
            } else if let star {
                p = star + 1
                resume += 1
                t = resume
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.count
    }
}
