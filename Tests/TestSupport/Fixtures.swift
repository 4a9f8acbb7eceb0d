import Foundation
import PackageFormat

/// Paths to the example packages and fixtures in the repository.
public enum Fixtures {
    public static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    public static let examples = root.appendingPathComponent("examples")

    public static func bytes(_ relative: String) throws -> [UInt8] {
        Array(try Data(contentsOf: examples.appendingPathComponent(relative)))
    }

    /// Every example package directory.
    public static let examplePackages = ["xdp-port-filter", "tc-egress-marker", "exec-tracker", "xdp-proto-counter"]

    /// Where the test command collects server logs and the secrets tests used, so that a last
    /// check can prove no secret reached a log (`EPR_TEST_LOG_DIR`; nil when not collecting).
    public static var logDirectory: URL? {
        ProcessInfo.processInfo.environment["EPR_TEST_LOG_DIR"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0) }
    }

    /// Notes a secret a test gave the server (a password, a token), for the log check.
    public static func recordSecret(_ secret: String) {
        guard let directory = logDirectory else { return }
        let path = directory.appendingPathComponent("secrets.txt").path
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        defer { close(fd) }
        let line = Array((secret + "\n").utf8)
        _ = write(fd, line, line.count)
    }

    /// Keeps a copy of a server log for the log check.
    public static func keepLog(_ log: URL, name: String) {
        guard let directory = logDirectory else { return }
        try? FileManager.default.copyItem(at: log, to: directory.appendingPathComponent("\(name)-\(UUID().uuidString).log"))
    }

    /// A new empty directory, removed by the caller.
    /// The unprivileged user servers and workers run as when the tests run as root (`nobody`),
    /// with the command prefix that starts a program as that user; nil when not root.
    public struct ServerUser: Sendable {
        public var uid: uid_t
        public var gid: gid_t
        public var prefix: [String] { ["/usr/bin/setpriv", "--reuid=\(uid)", "--regid=\(gid)", "--clear-groups", "--"] }
    }

    public static let serverUser: ServerUser? = {
        guard getuid() == 0, let entry = getpwnam("nobody") else { return nil }
        return ServerUser(uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid)
    }()

    /// Gives a file or directory tree to the user, without following links.
    public static func giveTree(_ path: String, to user: ServerUser) throws {
        guard lchown(path, user.uid, user.gid) == 0 else { throw FixtureError(description: "cannot chown \(path): \(errno)") }
        var status = stat()
        guard lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else { return }
        for name in try FileManager.default.contentsOfDirectory(atPath: path) { try giveTree(path + "/" + name, to: user) }
    }

    /// C source that tries to bring a host file into the compiler's messages (by a path relative
    /// to the source and by its absolute path: its content, if it forms C tokens, lands in an
    /// "incompatible pointer types" warning), and to learn whether files exist (`__has_include`,
    /// each found one named by a `#warning` with its word), and to pull the file in through the
    /// assembler (`.incbin`).
    public static func hostFileProbe(relative: String, absolute: String, exists: [(path: String, word: String)]) -> String {
        var lines = ["struct", "#include \"\(relative)\"", "{int a;} v;", "int *p = &v;",
                     "struct", "#include \"\(absolute)\"", "{int b;} w;", "int *q = &w;"]
        for (path, word) in exists { lines += ["#if __has_include(\"\(path)\")", "#warning \"\(word)\"", "#endif"] }
        lines.append("asm(\".incbin \\\"\(absolute)\\\"\");")
        return lines.joined(separator: "\n") + "\n"
    }

    /// Runs blocking work (a compiler, a virtual machine) on a thread of its own, so that it
    /// does not hold one of the few threads every test's asynchronous work shares.
    public static func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread { continuation.resume(with: Result { try body() }) }
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    public static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("epr-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Every example package's BPF objects.
    public static let exampleObjects = [
        "xdp-port-filter/port_filter.bpf.o",
        "tc-egress-marker/egress_marker.bpf.o",
        "exec-tracker/exec_tracker.bpf.o",
        "xdp-proto-counter/proto_counter.bpf.o",
    ]

    /// Runs a command, returning its exit status and standard output and error combined.
    public static func run(_ executable: String, _ arguments: [String], input: String? = nil) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let stdin = Pipe()
        process.standardInput = stdin
        try process.run()
        if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
        try? stdin.fileHandleForWriting.close()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// The first of `names` found on PATH (or as an absolute path).
    public static func tool(_ names: String...) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for name in names {
            if name.hasPrefix("/") { if FileManager.default.isExecutableFile(atPath: name) { return name } else { continue } }
            for directory in path.split(separator: ":").map(String.init) + ["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"] {
                let candidate = "\(directory)/\(name)"
                if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            }
        }
        return nil
    }
}

extension Fixtures {
    /// Builds an example package into `directory`, optionally as another version, and returns
    /// the archive's path.
    public static func packageArchive(_ example: String, version: String? = nil, into directory: URL) throws -> String {
        var source = examples.appendingPathComponent(example)
        if let version {
            let copy = directory.appendingPathComponent("src-\(example)-\(version)")
            try? FileManager.default.removeItem(at: copy)
            try FileManager.default.copyItem(at: source, to: copy)
            let manifest = copy.appendingPathComponent("epr.toml")
            var text = try String(contentsOf: manifest, encoding: .utf8)
            let line = text.split(separator: "\n").first { $0.hasPrefix("version = ") }!
            text = text.replacingOccurrences(of: String(line), with: "version = \"\(version)\"")
            try text.write(to: manifest, atomically: true, encoding: .utf8)
            source = copy
        }
        let output = directory.appendingPathComponent("out-\(example)-\(version ?? "default")")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        return try PackageBuilder().build(directory: source, output: output, modificationTime: 0).path
    }

    /// The xdp-proto-counter example with the bounds check before its first packet read taken
    /// out and rebuilt with clang: a valid package whose program the kernel verifier refuses.
    public static func unverifiablePackage(into directory: URL) throws -> String {
        let copy = directory.appendingPathComponent("unverifiable-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: examples.appendingPathComponent("xdp-proto-counter"), to: copy)
        let source = copy.appendingPathComponent("src/proto_counter.bpf.c")
        let text = try String(contentsOf: source, encoding: .utf8)
        let check = "\tif ((void *)(eth + 1) > data_end)\n\t\treturn -1;\n"
        guard text.contains(check) else { throw FixtureError(description: "the example's first bounds check has changed") }
        try text.replacingOccurrences(of: check, with: "").write(to: source, atomically: true, encoding: .utf8)
        guard let clang = tool("clang") else { throw FixtureError(description: "clang is not installed (scripts/install-bpf-toolchain.sh installs it)") }
        let (status, output) = try run(clang, ["-O2", "-g", "-target", "bpf", "-I/usr/include/\(machineTriple)", "-c", source.path,
                                               "-o", copy.appendingPathComponent("proto_counter.bpf.o").path])
        guard status == 0 else { throw FixtureError(description: "clang failed: \(output)") }
        let output2 = directory.appendingPathComponent("out-\(copy.lastPathComponent)")
        try FileManager.default.createDirectory(at: output2, withIntermediateDirectories: true)
        return try PackageBuilder().build(directory: copy, output: output2, modificationTime: 0).path
    }

    /// Where Debian keeps this machine's multiarch headers (asm/types.h).
    static var machineTriple: String {
        #if arch(arm64)
        "aarch64-linux-gnu"
        #else
        "x86_64-linux-gnu"
        #endif
    }

    /// The `epr` executable built with the tests.
    public static var eprBinary: String {
        if let explicit = ProcessInfo.processInfo.environment["EPR_BINARY"] { return explicit }
        let directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [directory, directory.deletingLastPathComponent()].map({ $0.appendingPathComponent("epr").path })
        where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        return root.appendingPathComponent(".build/debug/epr").path
    }

    public struct FixtureError: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }
}
