import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs a command in its own process group with a time limit, collecting at most `outputLimit`
/// bytes of its standard output and handing its standard error over line by line (so a
/// verifier log of hundreds of megabytes never sits in memory). Blocking: call it from a
/// thread that may block.
public struct ChildProcess: Sendable {
    public struct Result: Sendable {
        /// The exit status, or nil when a signal ended it.
        public var status: Int32?
        public var signal: Int32?
        public var timedOut: Bool
        public var output: [UInt8]
        public var outputTruncated: Bool
    }

    public enum Failure: Error, CustomStringConvertible {
        case cannotStart(String, errno: Int32)
        public var description: String {
            switch self {
            case let .cannotStart(command, code): "cannot start \(command): \(String(cString: strerror(code)))"
            }
        }
    }

    public var executable: String
    public var arguments: [String]
    public var environment: [String: String]?
    public var timeout: Duration
    public var outputLimit = 4 << 20
    /// Stops the command early (a server shutting down).
    public var cancellation: Cancellation?

    public init(executable: String, arguments: [String], environment: [String: String]? = nil, timeout: Duration) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.timeout = timeout
    }

    /// Finds a command on `PATH` (or the given search path).
    public static func find(_ name: String, path: String? = ProcessInfo.processInfo.environment["PATH"]) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        let directories = (path ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").split(separator: ":").map(String.init)
        for directory in directories {
            let candidate = "\(directory)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// Closes every descriptor above 2 in the child: with glibc's `closefrom` action where the
    /// C library has it, else by marking this process's descriptors close-on-exec.
    private static func closeOthers(_ actions: inout posix_spawn_file_actions_t) {
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32
        if let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np"),
           unsafeBitCast(symbol, to: CloseFrom.self)(&actions, 3) == 0 {
            return
        }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
            guard let fd = Int32(name), fd > 2 else { continue }
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0, flags & FD_CLOEXEC == 0 { _ = fcntl(fd, F_SETFD, flags | FD_CLOEXEC) }
        }
    }

    /// Children are started one at a time, so that no child inherits another's pipe ends in the
    /// moment before they are marked close-on-exec.
    private static let spawning = NSLock()

    /// Runs the command; when `cancellation` is cancelled (it is looked at every 200 ms), the
    /// command and everything it started are killed.
    public func run(errorLine: (Substring) -> Void = { _ in }) throws -> Result {
        var outPipe: [Int32] = [0, 0], errPipe: [Int32] = [0, 0]
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        posix_spawnattr_setpgroup(&attributes, 0)
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }

        var pid: pid_t = 0
        let code: Int32 = Self.spawning.withLock {
            guard pipe(&outPipe) == 0 else { return errno }
            guard pipe(&errPipe) == 0 else {
                let code = errno
                close(outPipe[0]); close(outPipe[1])
                return code
            }
            for fd in outPipe + errPipe { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
            posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
            // Nothing else of this process reaches the command: not its listening socket, its
            // database or its clients' connections.
            Self.closeOthers(&actions)
            let code = withCStrings([executable] + arguments) { argv in
                withCStrings(env) { envp in posix_spawn(&pid, executable, &actions, &attributes, argv, envp) }
            }
            close(outPipe[1]); close(errPipe[1])
            if code != 0 { close(outPipe[0]); close(errPipe[0]) }
            return code
        }
        guard code == 0 else { throw Failure.cannotStart(executable, errno: code) }
        defer { close(outPipe[0]); close(errPipe[0]) }

        let deadline = ContinuousClock.now + timeout
        var output: [UInt8] = [], truncated = false, timedOut = false
        var pending: [UInt8] = []
        var open = [outPipe[0], errPipe[0]]
        var buffer = [UInt8](repeating: 0, count: 65536)
        var status: Int32 = 0, exited = false
        // Read until both pipes close and the command has exited; what it started goes with it
        // when it exits. The time limit and cancellation hold throughout.
        while !exited || !open.isEmpty {
            let remaining = deadline - ContinuousClock.now
            if remaining <= .zero || cancellation?.isCancelled == true {
                timedOut = remaining <= .zero
                kill(-pid, SIGKILL)
                break
            }
            if !exited, waitpid(pid, &status, WNOHANG) == pid {
                exited = true
                kill(-pid, SIGKILL)
                continue
            }
            guard !open.isEmpty else {
                usleep(20_000)
                continue
            }
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            let millis = Int32(min(200, max(1, remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000)))
            let ready = poll(&fds, nfds_t(fds.count), millis)
            if ready < 0, errno == EINTR { continue }
            guard ready > 0 else { continue }
            for entry in fds where entry.revents != 0 {
                let n = buffer.withUnsafeMutableBytes { read(entry.fd, $0.baseAddress, $0.count) }
                if n <= 0 {
                    if n < 0, errno == EINTR || errno == EAGAIN { continue }
                    open.removeAll { $0 == entry.fd }
                    continue
                }
                if entry.fd == outPipe[0] {
                    let room = max(0, outputLimit - output.count)
                    output += buffer[0..<min(n, room)]
                    if n > room { truncated = true }
                } else {
                    pending += buffer[0..<n]
                    var start = 0
                    while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
                        errorLine(Substring(decoding: pending[start..<newline], as: UTF8.self))
                        start = newline + 1
                    }
                    pending.removeFirst(start)
                    // A line longer than 64 KiB is handed over in pieces.
                    if pending.count > 65536 {
                        errorLine(Substring(decoding: pending, as: UTF8.self))
                        pending.removeAll()
                    }
                }
            }
        }
        if !pending.isEmpty { errorLine(Substring(decoding: pending, as: UTF8.self)) }
        if !exited { while waitpid(pid, &status, 0) < 0, errno == EINTR {} }
        let normal = status & 0x7f == 0
        return Result(status: normal ? (status >> 8) & 0xff : nil, signal: normal ? nil : status & 0x7f, timedOut: timedOut,
                      output: output, outputTruncated: truncated)
    }
}

/// A flag that asks running commands to stop, set from any thread.
public final class Cancellation: @unchecked Sendable {
    private let lock = NSLock()
    private var cancelled = false
    public init() {}
    public var isCancelled: Bool { lock.withLock { cancelled } }
    public func cancel() { lock.withLock { cancelled = true } }
}

private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { for pointer in pointers { free(pointer) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
