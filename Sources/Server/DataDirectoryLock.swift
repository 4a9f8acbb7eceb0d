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

/// The data directory's modes, set at every start (not only when it is made): the directory
/// and every directory directly in it readable by the server's user alone, and every file in
/// it (the database with its TOTP secrets and session hashes, keys, the admin token) too.
enum DataDirectoryModes {
    static func enforce(_ data: URL) throws {
        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: data.path)
        for name in try FileManager.default.contentsOfDirectory(atPath: data.path) {
            let path = data.appendingPathComponent(name).path
            var status = stat()
            guard lstat(path, &status) == 0 else { continue }
            switch status.st_mode & S_IFMT {
            case S_IFDIR: if status.st_mode & 0o077 != 0 { chmod(path, 0o700) }
            case S_IFREG: if status.st_mode & 0o077 != 0 { chmod(path, mode_t(status.st_mode & 0o700)) }
            default: continue
            }
        }
    }
}
