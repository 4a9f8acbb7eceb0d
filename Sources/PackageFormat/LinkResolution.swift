/// Resolves the symbolic links of an archive as the kernel would (a link's target from the
/// link's own directory, links met along the way followed, at most 40 links in a chain), each
/// link once: the result of every link is kept, so the work is linear in the links' text
/// however often a chain names the same link. A budget caps the whole resolution, each step
/// charged the bytes of the path it looks up; running out of it, a loop, a chain of more than 40
/// links, a path longer than 4096 bytes or a component longer than 255, or climbing out of the
/// top-level directory resolves to nil.
struct LinkResolution {
    struct Resolved {
        var parts: [String]
        /// How many links the chain behind this path followed.
        var hops: Int
    }

    static let maximumHops = 40
    /// The longest path, and path component, the kernel resolves.
    static let maximumPath = 4096
    static let maximumComponent = 255

    let symlinks: [String: String]
    let topLevel: String?
    private(set) var budget: Int
    private var done: [String: Resolved?] = [:]
    private var inProgress: Set<String> = []

    init(symlinks: [String: String], topLevel: String?, budget: Int) {
        self.symlinks = symlinks
        self.topLevel = topLevel
        self.budget = budget
    }

    /// Where the link at `path` (a path in the archive) leads, or nil when it escapes, loops or
    /// costs more than the budget.
    mutating func resolve(link path: String) -> Resolved? {
        if let known = done[path] { return known }
        guard let target = symlinks[path], !inProgress.contains(path) else { return nil }
        inProgress.insert(path)
        let base = path.split(separator: "/").dropLast().map(String.init)
        let result = follow(base, target)
        inProgress.remove(path)
        done[path] = .some(result)
        return result
    }

    private mutating func follow(_ base: [String], _ target: String) -> Resolved? {
        guard !target.hasPrefix("/") else { return nil }
        var parts = base, hops = 1
        for component in target.split(separator: "/") {
            budget -= 1
            guard budget >= 0 else { return nil }
            switch component {
            case ".": continue
            case "..":
                guard !parts.isEmpty else { return nil }
                parts.removeLast()
            default:
                guard component.utf8.count <= Self.maximumComponent else { return nil }
                parts.append(String(component))
                let here = parts.joined(separator: "/")
                // Each step costs the bytes of the path it looks up.
                budget -= here.utf8.count
                guard budget >= 0, here.utf8.count <= Self.maximumPath else { return nil }
                if symlinks[here] != nil {
                    guard let next = resolve(link: here) else { return nil }
                    hops += next.hops
                    guard hops <= Self.maximumHops else { return nil }
                    parts = next.parts
                }
            }
            // Climbing out of the top-level directory is an escape even if the path comes back.
            guard let top = topLevel, parts.first == top else { return nil }
        }
        return Resolved(parts: parts, hops: hops)
    }
}
