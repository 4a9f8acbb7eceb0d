import Foundation

/// One server per data directory: the embedded stores assume they are the only writer (the
/// start-up sweep would otherwise remove another server's uploads in flight).
enum DataDirectoryLock {
    struct InUse: Error, CustomStringConvertible {
        let path: String
        var description: String { "the data directory \(path) is in use by another epr server" }
    }

    /// Takes an exclusive lock on `<data>/lock`, held until the descriptor it returns is closed.
    static func acquire(_ data: URL) throws -> Int32 {
        let path = data.appendingPathComponent("lock").path
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path]) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw InUse(path: data.path)
        }
        return fd
    }
}
