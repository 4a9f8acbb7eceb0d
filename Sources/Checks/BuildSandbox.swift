import Foundation

/// The sandbox a build worker runs every build step in, and the checks run their tools in
/// (bubblewrap): no network (a network
/// namespace of its own, without interfaces), every file system read-only but the package
/// directory and a private /tmp, no other process visible, no new privileges, and an address
/// space limit (`prlimit --as`). Time limits are the build's own (each step is stopped when it
/// runs past its limit, with everything it started).
public struct BuildSandbox: Sendable {
    public var bwrap: String
    public var prlimit: String
    /// The most memory (address space) a step may use.
    public var memoryBytes: Int64
    /// The most processes, the largest file, and the size of the private /tmp.
    public var processes = 256
    public var fileBytes: Int64 = 1 << 30
    public var tmpBytes: Int64 = 512 << 20
    /// Seconds of CPU time a step may use; nil: only the wall-clock limit of the step.
    public var cpuSeconds: Int?

    public init?(memoryBytes: Int64 = 4 << 30, path: String? = ProcessInfo.processInfo.environment["PATH"]) {
        guard let bwrap = ChildProcess.find("bwrap", path: path), let prlimit = ChildProcess.find("prlimit", path: path) else { return nil }
        self.bwrap = bwrap
        self.prlimit = prlimit
        self.memoryBytes = memoryBytes
    }

    /// The command prefix that runs a step inside the sandbox, for a package in `directory`
    /// (seen at `mount`, the same path by default; writable only when `writable`). The kernel's
    /// BTF is there for builds that make `vmlinux.h`, only when `kernelBTF`.
    /// `readOnly` adds files and directories seen read-only, each at the path given with it.
    public func wrapper(directory: String, mount: String? = nil, writable: Bool = true, kernelBTF: Bool = true,
                        readOnly: [(source: String, target: String)] = []) -> [String] {
        let mount = mount ?? directory
        var arguments = [bwrap, "--die-with-parent", "--new-session", "--unshare-all", "--cap-drop", "ALL", "--ro-bind", "/usr", "/usr"]
        // Of /etc, only what the toolchain needs: the dynamic loader's cache and the
        // alternatives that name the compilers.
        for path in ["/etc/alternatives", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d"] {
            arguments += ["--ro-bind-try", path, path]
        }
        // Merged-/usr systems link /bin, /lib and the like into /usr; others have them apart.
        for top in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: top) {
                arguments += ["--symlink", target, top]
            } else if FileManager.default.fileExists(atPath: top) {
                arguments += ["--ro-bind", top, top]
            }
        }
        if kernelBTF { arguments += ["--ro-bind-try", "/sys/kernel/btf", "/sys/kernel/btf"] }
        arguments += ["--proc", "/proc", "--dev", "/dev", "--size", String(tmpBytes), "--tmpfs", "/tmp",
                      writable ? "--bind" : "--ro-bind", directory, mount, "--chdir", mount,
                      "--setenv", "HOME", mount, "--setenv", "TMPDIR", "/tmp"]
        for bind in readOnly { arguments += ["--ro-bind", bind.source, bind.target] }
        arguments += ["--remount-ro", "/",
                      "--", prlimit, "--as=\(memoryBytes)", "--nproc=\(processes)", "--fsize=\(fileBytes)"]
        if let cpuSeconds { arguments.append("--cpu=\(cpuSeconds)") }
        return arguments + ["--"]
    }

    /// What a build in the sandbox sees of the environment: a fixed PATH and locale, and the
    /// tool choices and SOURCE_DATE_EPOCH of the worker's.
    public static func environment(from worker: [String: String]) -> [String: String] {
        var environment = ["PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"]
        for key in ["CLANG", "LLVM_STRIP", "CC", "BPFTOOL", "SOURCE_DATE_EPOCH"] { environment[key] = worker[key] }
        return environment
    }
}
