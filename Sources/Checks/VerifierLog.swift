/// Reads what libbpf and bpftool print while loading an object with the verifier's log on, one
/// line at a time, keeping per program only the figures and the last lines of its log.
struct VerifierLog {
    struct Program: Sendable, Equatable {
        var name: String
        /// libbpf's reason when the load failed ("Permission denied").
        var failure: String?
        /// The last lines of the verifier's log (its complaint, for a refused program).
        var tail: [String] = []
        var sawLog = false
        var processedInstructions: Int?
        var totalStates: Int?
        var peakStates: Int?
        var verificationMicroseconds: Int?
        var stackDepth: String?
    }

    static let keptLines = 24

    private(set) var programs: [Program] = []
    /// The last lines printed outside any program's log (bpftool's and libbpf's own errors).
    private(set) var other: [String] = []
    private var current: Int?

    mutating func consume(_ raw: Substring) {
        let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
        if let name = Self.programName(line, marker: "': -- BEGIN PROG LOAD LOG --") {
            current = index(of: name)
            programs[current!].sawLog = true
            programs[current!].tail = []
            return
        }
        if line.hasPrefix("-- END PROG LOAD LOG --") {
            current = nil
            return
        }
        if let current {
            record(line, in: current)
            return
        }
        if let name = Self.programName(line, marker: "': BPF program load failed: ") {
            let reason = line.range(of: "BPF program load failed: ").map { String(line[$0.upperBound...]) } ?? ""
            programs[index(of: name)].failure = reason
        }
        if !line.isEmpty {
            other.append(String(line))
            if other.count > Self.keptLines { other.removeFirst() }
        }
    }

    private mutating func record(_ line: Substring, in index: Int) {
        if line.hasPrefix("processed ") {
            let words = line.split(separator: " ")
            func value(after key: String) -> Int? { words.firstIndex(of: Substring(key)).flatMap { $0 + 1 < words.count ? Int(words[$0 + 1]) : nil } }
            programs[index].processedInstructions = words.count > 1 ? Int(words[1]) : nil
            programs[index].totalStates = value(after: "total_states")
            programs[index].peakStates = value(after: "peak_states")
            return
        }
        if line.hasPrefix("verification time ") {
            programs[index].verificationMicroseconds = line.split(separator: " ").dropFirst(2).first.flatMap { Int($0) }
            return
        }
        if line.hasPrefix("stack depth ") {
            programs[index].stackDepth = String(line.dropFirst("stack depth ".count))
            return
        }
        programs[index].tail.append(String(line.prefix(500)))
        if programs[index].tail.count > Self.keptLines { programs[index].tail.removeFirst() }
    }

    private mutating func index(of name: String) -> Int {
        if let found = programs.firstIndex(where: { $0.name == name }) { return found }
        programs.append(Program(name: name))
        return programs.count - 1
    }

    /// `libbpf: prog 'NAME<marker>...`
    static func programName(_ line: Substring, marker: String) -> String? {
        guard line.hasPrefix("libbpf: prog '"), let end = line.range(of: marker) else { return nil }
        return String(line[line.index(line.startIndex, offsetBy: "libbpf: prog '".count)..<end.lowerBound])
    }

    /// The verifier's own words about why it refused a program: the lines after the last
    /// instruction it printed (instruction lines start with `N: (`), or the last lines of the log.
    static func complaint(_ tail: [String]) -> String {
        let instruction = tail.lastIndex { line in
            guard let colon = line.firstIndex(of: ":"), colon > line.startIndex else { return false }
            return line[..<colon].allSatisfy(\.isNumber) && line[colon...].hasPrefix(": (")
        }
        var lines = instruction.map { Array(tail[($0 + 1)...]) } ?? Array(tail.suffix(3))
        lines = lines.filter { !$0.isEmpty && !$0.hasPrefix(";") }
        if lines.isEmpty { lines = Array(tail.suffix(2)) }
        return lines.suffix(6).joined(separator: "\n")
    }
}
