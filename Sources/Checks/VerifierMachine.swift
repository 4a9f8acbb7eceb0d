import Foundation

/// A virtual machine that runs BPF objects through the verifier of a kernel of its own, so
/// that a package is never loaded into the registry host's kernel: qemu (software emulation,
/// no disk, no network, its own seccomp sandbox) boots one of the kernels that
/// `scripts/install-verifier-vm.sh` put in ``directory``, with an initramfs of the base
/// archive (busybox, the static loader of `vm/loader.c`, `vm/init`) and the objects; the loader
/// prints, framed by `EPR-` prefixes, what `bpftool -d prog loadall` would for each object, and
/// the machine powers off.
public struct VerifierMachine: Sendable {
    public struct Kernel: Sendable, Equatable {
        public var release: String
        public var file: URL
    }

    /// What the machine said of one object.
    struct ObjectRun {
        /// The loader's lines as bpftool's standard error would have them.
        var errorLines: [Substring] = []
        /// One JSON document a loaded program, as `bpftool -j prog show`.
        var shown: [Substring] = []
        /// The loader's exit status and stage (`loaded`, `kernel`, `libbpf`, `open`, `crashed`).
        var exit: Int32?
        var stage: String?
    }

    /// What one boot gave: the kernel it ran, each object's run (by index), whether the machine
    /// got to its end, and why not.
    struct Run {
        var kernel: String?
        var objects: [ObjectRun]
        var finished = false
        var timedOut = false
        var failure: String?
    }

    public let directory: URL
    public let qemu: String
    /// The kernels installed, the preferred first.
    public let kernels: [Kernel]
    public var memoryMiB = 512
    /// Lines of each verifier log the machine sends back (the complaint is at its end).
    public var logLines = 400

    /// The machine installed in `directory`; nil when qemu, the base archive or any kernel is
    /// missing.
    public init?(directory: URL, path: String? = ProcessInfo.processInfo.environment["PATH"]) {
        guard let qemu = ChildProcess.find("qemu-system-x86_64", path: path),
              FileManager.default.isReadableFile(atPath: directory.appendingPathComponent("base.cpio.gz").path),
              let list = try? String(contentsOf: directory.appendingPathComponent("kernels"), encoding: .utf8) else { return nil }
        let kernels = list.split(separator: "\n").compactMap { line -> Kernel? in
            let fields = line.split(separator: " ")
            guard fields.count == 2, !fields[1].contains("/") else { return nil }
            let file = directory.appendingPathComponent(String(fields[1]))
            return FileManager.default.isReadableFile(atPath: file.path) ? Kernel(release: String(fields[0]), file: file) : nil
        }
        guard !kernels.isEmpty else { return nil }
        self.directory = directory
        self.qemu = qemu
        self.kernels = kernels
    }

    /// Objects larger together than the machine can hold.
    struct TooLarge: Error, CustomStringConvertible {
        let limit: Int
        var description: String { "the package's objects are larger than the \(limit >> 20) MiB the verifier machine can take" }
    }

    /// Where `scripts/install-verifier-vm.sh` installs the machine by default.
    public static let defaultDirectory = URL(fileURLWithPath: "/var/lib/epr/vm")

    /// Boots `kernel` with `objects` (files) in `scratch` (a directory of the check's own) and
    /// reads what it said.
    func run(objects: [URL], kernel: Kernel, scratch: URL, timeout: Duration, cancellation: Cancellation?) throws -> Run {
        // The objects travel in the machine's memory: more than half of it cannot be verified.
        let sizes = objects.map { (try? FileManager.default.attributesOfItem(atPath: $0.path)[.size] as? Int) ?? 0 }
        guard sizes.reduce(0, +) <= (memoryMiB << 20) / 2 else { throw TooLarge(limit: (memoryMiB << 20) / 2) }
        let initrd = scratch.appendingPathComponent("initrd")
        guard FileManager.default.createFile(atPath: initrd.path, contents: nil) else { throw CocoaError(.fileWriteUnknown) }
        let handle = try FileHandle(forWritingTo: initrd)
        defer { try? handle.close() }
        let base = try Data(contentsOf: directory.appendingPathComponent("base.cpio.gz"))
        try handle.write(contentsOf: base)
        // The kernel looks for an archive after a compressed one only at a 4-byte boundary.
        try handle.write(contentsOf: Data(count: (4 - base.count % 4) % 4))
        // The objects' archive, an entry at a time: one object in memory at once.
        var start = CPIOArchive()
        start.directory("objects")
        try handle.write(contentsOf: start.bytes)
        for (index, object) in objects.enumerated() {
            var entry = CPIOArchive(firstInode: index + 2)
            entry.file("objects/\(index).o", contents: Array(try Data(contentsOf: object)))
            try handle.write(contentsOf: entry.bytes)
        }
        var end = CPIOArchive()
        end.finish()
        try handle.write(contentsOf: end.bytes)

        let arguments = ["-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
                         "-accel", "tcg", "-m", String(memoryMiB), "-smp", "1",
                         "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
                         "-serial", "stdio", "-monitor", "none", "-nic", "none",
                         "-kernel", kernel.file.path, "-initrd", initrd.path,
                         "-append", "console=ttyS0 quiet panic=-1 epr.loglines=\(logLines)"]
        var child = ChildProcess(executable: qemu, arguments: arguments, environment: ["PATH": "/usr/bin:/bin", "LC_ALL": "C"], timeout: timeout)
        child.outputLimit = 64 << 20
        child.cancellation = cancellation
        var qemuErrors: [String] = []
        let result = try child.run { line in if qemuErrors.count < 20 { qemuErrors.append(String(line)) } }
        var run = Self.parse(result.output, objects: objects.count)
        run.timedOut = result.timedOut
        if !run.finished, !result.timedOut {
            run.failure = result.status == 0 ? "the machine stopped before it verified every object"
                : "qemu failed (\(result.status.map { "exit \($0)" } ?? "signal \(result.signal ?? 0)")): \(qemuErrors.suffix(3).joined(separator: " "))"
        }
        if result.outputTruncated { run.failure = "the machine said more than \(child.outputLimit) bytes" }
        return run
    }

    /// Reads the console: only lines starting with `EPR-` (the kernel may print anything else).
    static func parse(_ console: [UInt8], objects: Int) -> Run {
        var run = Run(objects: Array(repeating: ObjectRun(), count: objects))
        var current: Int?
        let text = String(decoding: console, as: UTF8.self)
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.hasSuffix("\r") ? raw.dropLast() : raw
            guard let start = line.range(of: "EPR-")?.lowerBound, start == line.startIndex else { continue }
            if line.hasPrefix("EPR-E ") || line == "EPR-E" {
                if let current { run.objects[current].errorLines.append(line.dropFirst(min(6, line.count))) }
            } else if line.hasPrefix("EPR-O ") {
                if let current { run.objects[current].shown.append(line.dropFirst(6)) }
            } else if line.hasPrefix("EPR-BEGIN ") {
                current = index(line.dropFirst(10), count: objects)
            } else if line.hasPrefix("EPR-END ") {
                let fields = line.dropFirst(8).split(separator: " ")
                if let object = fields.first.flatMap({ index($0, count: objects) }), fields.count >= 3 {
                    run.objects[object].exit = Int32(fields[1])
                    run.objects[object].stage = String(fields[2])
                }
                current = nil
            } else if line.hasPrefix("EPR-KERNEL ") {
                run.kernel = String(line.dropFirst(11))
            } else if line == "EPR-DONE" {
                run.finished = true
            }
        }
        return run
    }

    /// The index of `/objects/<i>.o`.
    private static func index(_ path: Substring, count: Int) -> Int? {
        guard path.hasPrefix("/objects/"), path.hasSuffix(".o"), let index = Int(path.dropFirst(9).dropLast(2)),
              (0..<count).contains(index) else { return nil }
        return index
    }
}

/// An uncompressed cpio archive in the `newc` format the kernel unpacks into its initramfs:
/// directories and regular files owned by root, with no times.
struct CPIOArchive {
    private(set) var bytes: [UInt8] = []
    private var inode: Int

    /// An archive, or a run of entries of one, numbering its entries from `firstInode`; every
    /// run is a multiple of 4 bytes long, so runs written one after another make one archive.
    init(firstInode: Int = 1) { inode = firstInode }

    mutating func directory(_ name: String) { entry(name, mode: 0o040755, contents: []) }

    mutating func file(_ name: String, contents: [UInt8]) { entry(name, mode: 0o100644, contents: contents) }

    mutating func finish() { entry("TRAILER!!!", mode: 0, contents: [], inode: 0) }

    private mutating func entry(_ name: String, mode: UInt32, contents: [UInt8], inode: Int? = nil) {
        let fields = [UInt32(inode ?? self.inode), mode, 0, 0, mode & 0o040000 != 0 ? 2 : 1, 0, UInt32(contents.count), 0, 0, 0, 0,
                      UInt32(name.utf8.count + 1), 0]
        if inode == nil { self.inode += 1 }
        bytes += Array("070701".utf8)
        for field in fields {
            let hex = String(field, radix: 16, uppercase: true)
            bytes += Array((String(repeating: "0", count: 8 - hex.count) + hex).utf8)
        }
        bytes += Array(name.utf8) + [0]
        pad()
        bytes += contents
        pad()
    }

    private mutating func pad() { bytes += [UInt8](repeating: 0, count: (4 - bytes.count % 4) % 4) }
}
