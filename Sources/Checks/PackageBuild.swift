import Foundation
import PackageFormat

/// Builds a package directory from its sources as its manifest's `[build]` table says: each
/// kernel object with clang's BPF target (CO-RE, `-D__TARGET_ARCH_<arch>`, `vmlinux.h` from the
/// build machine's kernel BTF or supplied), the user-space program with the system compiler and
/// libbpf, then the package's tests. The results are written where the manifest declares them,
/// ready for ``PackageBuilder``.
///
/// The same sources give the same bytes: commands run inside the package directory on relative
/// paths, the directory's absolute path is mapped to `.` in debug information
/// (`-fdebug-prefix-map`, `-ffile-prefix-map`), GCC does not record its command line, DWARF is
/// stripped from the objects (BTF stays), and the archive takes its times from
/// `SOURCE_DATE_EPOCH` (else the epoch).
public struct PackageBuild: Sendable {
    public struct Options: Sendable {
        /// The architecture built for (one the package declares); the build machine's by default.
        public var architecture: String?
        /// A `vmlinux.h` to use instead of one made from `/sys/kernel/btf/vmlinux`.
        public var vmlinux: String?
        /// The time each step may take.
        public var stepTimeout: Duration = .seconds(600)
        /// When the whole build must be done: no step runs past it.
        public var deadline: ContinuousClock.Instant?
        /// Tools, from CLANG, LLVM_STRIP, CC and BPFTOOL when set.
        public var clang = "clang", llvmStrip = "llvm-strip", cc = "cc", bpftool = "bpftool"
        /// A command every step runs under (a sandbox), given the package directory.
        public var wrapper: (@Sendable (_ directory: String) -> [String])?
        /// The environment of every step.
        public var environment: [String: String]

        public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
            self.environment = environment
            clang = environment["CLANG"] ?? clang
            llvmStrip = environment["LLVM_STRIP"] ?? llvmStrip
            cc = environment["CC"] ?? cc
            bpftool = environment["BPFTOOL"] ?? bpftool
        }
    }

    /// One command of the build and what it printed.
    public struct Step: Sendable, Codable, Equatable {
        public var command: [String]
        public var status: Int32?
        public var output: String
        public var timedOut: Bool
    }

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var message: String
        public var steps: [Step]
        /// The finding's id: `build.failed`, `build.timeout` or `build.unsupported`.
        public var check: String
        public var description: String { message }
    }

    public var options: Options
    public init(options: Options = Options()) { self.options = options }

    /// What `__TARGET_ARCH_` clang's BPF headers expect for a package architecture.
    public static func targetArch(_ architecture: String) -> String? {
        [
            "x86_64": "x86", "arm64": "arm64", "arm": "arm", "riscv64": "riscv", "ppc64le": "powerpc", "s390x": "s390",
            "loongarch64": "loongarch", "mips64": "mips",
        ][architecture]
    }

    /// The build machine's architecture as packages name it.
    public static var hostArchitecture: String {
        var name = utsname()
        uname(&name)
        let machine = withUnsafeBytes(of: &name.machine) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return machine == "aarch64" ? "arm64" : machine
    }

    /// Builds the package in `directory` (its objects and user-space program are written into
    /// it); returns its manifest and the steps run. Throws ``Failure`` with the steps so far.
    public func run(directory: URL) throws -> (manifest: Manifest, steps: [Step]) {
        let root = directory.standardizedFileURL.path
        let manifestPath = directory.appendingPathComponent(Manifest.fileName).path
        guard let data = FileManager.default.contents(atPath: manifestPath), let text = String(data: data, encoding: .utf8) else {
            throw Failure(message: "\(manifestPath) cannot be read", steps: [], check: "build.failed")
        }
        let manifest: Manifest
        do { manifest = try Manifest.parse(text).manifest } catch {
            throw Failure(message: "the manifest is not valid:\n\(error.description)", steps: [], check: "build.failed")
        }
        if manifest.platforms == [ManifestVocabulary.windows] {
            throw Failure(message: "building for Windows is not supported yet: build eBPF for Windows objects with its own toolchain and package them",
                          steps: [], check: "build.unsupported")
        }
        guard let build = manifest.build else {
            throw Failure(message: "\(Manifest.fileName) has no [build] table: say how the objects are built (docs/building.md)", steps: [],
                          check: "build.unsupported")
        }
        let host = Self.hostArchitecture
        let architecture = options.architecture ?? (manifest.architectures.contains(host) ? host : manifest.architectures.first ?? host)
        guard manifest.architectures.contains(architecture) || manifest.architectures.isEmpty else {
            throw Failure(message: "the package declares \(manifest.architectures.joined(separator: ", ")), not \(architecture)", steps: [],
                          check: "build.unsupported")
        }
        guard let target = Self.targetArch(architecture) else {
            throw Failure(message: "clang's BPF target has no architecture \(architecture)", steps: [], check: "build.unsupported")
        }
        var steps: [Step] = []
        func run(_ command: [String], capture: Int = 4 << 20) throws -> Step {
            var arguments = ["-C", root, "--"] + command
            var executable = "/usr/bin/env"
            if let wrapper = options.wrapper {
                let wrapped = wrapper(root) + [executable] + arguments
                executable = wrapped[0]
                arguments = Array(wrapped.dropFirst())
            }
            var timeout = options.stepTimeout
            if let deadline = options.deadline {
                let left = deadline - ContinuousClock.now
                guard left > .zero else {
                    throw Failure(message: "the build ran past its time limit before \(command[0]) could start", steps: steps, check: "build.timeout")
                }
                timeout = min(timeout, left)
            }
            var child = ChildProcess(executable: executable, arguments: arguments, environment: options.environment, timeout: timeout)
            child.outputLimit = capture
            var errors = ""
            let result: ChildProcess.Result
            do { result = try child.run { errors += $0 + "\n" } } catch {
                steps.append(Step(command: command, status: nil, output: "\(error)", timedOut: false))
                throw Failure(message: "\(command[0]) could not be started: \(error)", steps: steps, check: "build.failed")
            }
            let output = capture > 1 << 20 ? errors : String(decoding: result.output, as: UTF8.self) + errors
            let step = Step(command: command, status: result.status, output: output, timedOut: result.timedOut)
            steps.append(step)
            if result.timedOut {
                throw Failure(message: "\(command[0]) ran past the time limit of \(timeout) and was stopped", steps: steps, check: "build.timeout")
            }
            guard result.status == 0 else {
                let how = result.status.map { "exited with status \($0)" } ?? "was killed by signal \(result.signal ?? 0)"
                // The last thing it said is usually why.
                let said = output.split(separator: "\n").last.map { ": " + $0.prefix(300) } ?? ""
                throw Failure(message: "\(command.prefix(3).joined(separator: " "))\(command.count > 3 ? " ..." : "") \(how)\(said)", steps: steps,
                              check: "build.failed")
            }
            return Step(command: command, status: 0, output: String(decoding: result.output, as: UTF8.self), timedOut: false)
        }

        let work = ".epr-build"
        try? FileManager.default.removeItem(atPath: root + "/" + work)
        try FileManager.default.createDirectory(atPath: root + "/" + work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root + "/" + work) }
        var includes = ["-I\(work)", "-I."]
        if build.vmlinux {
            let header = root + "/" + work + "/vmlinux.h"
            if let supplied = options.vmlinux {
                try FileManager.default.copyItem(atPath: supplied, toPath: header)
            } else if FileManager.default.fileExists(atPath: root + "/vmlinux.h") {
                includes = ["-I."]
            } else {
                guard architecture == host else {
                    throw Failure(message: "building for \(architecture) on \(host) needs that architecture's vmlinux.h: supply it (--vmlinux)", steps: steps,
                                  check: "build.unsupported")
                }
                let dump = try run([options.bpftool, "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "c"], capture: 256 << 20)
                try Data(dump.output.utf8).write(to: URL(fileURLWithPath: header))
            }
        }
        let maps = ["-fdebug-prefix-map=\(root)=.", "-ffile-prefix-map=\(root)=."]
        for object in build.objects {
            let flags = ["-O2", "-g", "-target", "bpf", "-D__TARGET_ARCH_\(target)"] + maps + includes + build.cflags + object.cflags
            if object.sources.count == 1 {
                _ = try run([options.clang] + flags + ["-c", object.sources[0], "-o", object.object])
            } else {
                var parts: [String] = []
                for (index, source) in object.sources.enumerated() {
                    let part = "\(work)/\(index)-\(source.split(separator: "/").last ?? "part").o"
                    _ = try run([options.clang] + flags + ["-c", source, "-o", part])
                    parts.append(part)
                }
                _ = try run([options.bpftool, "gen", "object", object.object] + parts)
            }
            if build.strip { _ = try run([options.llvmStrip, "-g", object.object]) }
        }
        if let user = build.user {
            var cc = options.cc
            if architecture != host {
                let cross = Self.crossCompiler(architecture)
                guard options.environment["CC"] != nil || ChildProcess.find(cross, path: options.environment["PATH"]) != nil else {
                    throw Failure(message: "building the user-space program for \(architecture) needs a cross compiler: install \(cross) or set CC",
                                  steps: steps, check: "build.unsupported")
                }
                if options.environment["CC"] == nil { cc = cross }
            }
            _ = try run([cc, "-O2", "-g", "-gno-record-gcc-switches"] + maps + ["-I."] + user.cflags + ["-o", user.output] + user.sources
                        + user.libs.map { "-l" + $0 })
        }
        if let test = build.test {
            // The tests run on what was built; they may not change it.
            let before = try builtDigests(PackageBuilder.builtFiles(manifest), root: root)
            _ = try run(["./" + test])
            guard try builtDigests(PackageBuilder.builtFiles(manifest), root: root) == before else {
                throw Failure(message: "the test script \(test) changed what the build made", steps: steps, check: "build.failed")
            }
        }
        return (manifest, steps)
    }

    /// The built files' digests (nil where a file is missing or not a regular file).
    func builtDigests(_ paths: Set<String>, root: String) throws -> [String: String] {
        var digests: [String: String] = [:]
        for path in paths {
            var info = stat()
            guard lstat(root + "/" + path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG,
                  let data = FileManager.default.contents(atPath: root + "/" + path) else { digests[path] = "missing"; continue }
            digests[path] = SHA256Digest(of: data).hex
        }
        return digests
    }

    static func crossCompiler(_ architecture: String) -> String {
        let triple = [
            "arm64": "aarch64-linux-gnu", "arm": "arm-linux-gnueabihf", "riscv64": "riscv64-linux-gnu", "ppc64le": "powerpc64le-linux-gnu",
            "s390x": "s390x-linux-gnu", "mips64": "mips64-linux-gnuabi64", "loongarch64": "loongarch64-linux-gnu", "x86_64": "x86_64-linux-gnu",
        ][architecture] ?? architecture
        return triple + "-gcc"
    }

    /// The steps as a readable log: each command, then what it printed.
    public static func log(_ steps: [Step]) -> String {
        steps.map { step in
            var text = "$ " + step.command.joined(separator: " ") + "\n"
            if !step.output.isEmpty, step.command.first.map({ !$0.hasSuffix("bpftool") || step.command.dropFirst().first != "btf" }) ?? true {
                text += step.output + (step.output.hasSuffix("\n") ? "" : "\n")
            }
            if step.timedOut { text += "(stopped: time limit)\n" } else if let status = step.status, status != 0 { text += "(exit status \(status))\n" }
            return text
        }.joined()
    }
}
