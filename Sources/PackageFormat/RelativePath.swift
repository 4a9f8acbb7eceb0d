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

    /// Whether `path` matches a glob `pattern` where `*` matches within one component and `**`
    /// matches any number of components.
    public static func matches(_ path: String, pattern: String) -> Bool {
        matchComponents(path.split(separator: "/")[...], pattern.split(separator: "/")[...])
    }

    private static func matchComponents(_ path: ArraySlice<Substring>, _ pattern: ArraySlice<Substring>) -> Bool {
        guard let first = pattern.first else { return path.isEmpty }
        if first == "**" {
            for skip in 0...path.count where matchComponents(path.dropFirst(skip), pattern.dropFirst()) { return true }
            return false
        }
        guard let component = path.first, matchComponent(Array(component.utf8)[...], Array(first.utf8)[...]) else { return false }
        return matchComponents(path.dropFirst(), pattern.dropFirst())
    }

    private static func matchComponent(_ text: ArraySlice<UInt8>, _ pattern: ArraySlice<UInt8>) -> Bool {
        guard let p = pattern.first else { return text.isEmpty }
        switch p {
        case UInt8(ascii: "*"):
            for skip in 0...text.count where matchComponent(text.dropFirst(skip), pattern.dropFirst()) { return true }
            return false
        case UInt8(ascii: "?"):
            return !text.isEmpty && matchComponent(text.dropFirst(), pattern.dropFirst())
        default:
            return text.first == p && matchComponent(text.dropFirst(), pattern.dropFirst())
        }
    }
}
