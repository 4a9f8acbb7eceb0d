/// A BPF helper function as the kernel defines it: its stable id, its name without the
/// `bpf_` prefix, and what a reviewer needs to know about calling it.
public struct HelperFunction: Sendable, Equatable, Codable {
    public let id: Int32
    public let name: String
    /// Only programs whose license the kernel treats as GPL-compatible may call it.
    public let gplOnly: Bool
    /// Calling it warrants a reviewer's explicit attention.
    public let securitySensitive: Bool
    /// What makes it security-sensitive, when it is.
    public let risk: String?

    /// The helper with this id, or nil for ids the kernel does not define.
    public static func helper(id: Int32) -> HelperFunction? {
        id >= 0 && Int(id) < table.count ? table[Int(id)] : nil
    }

    /// The helper with this name (with or without the `bpf_` prefix).
    public static func helper(named name: String) -> HelperFunction? {
        let bare = name.hasPrefix("bpf_") ? String(name.dropFirst(4)) : name
        return table.first { $0.name == bare }
    }

    /// Every helper id the kernel defines.
    public static var all: [HelperFunction] { table }
}
