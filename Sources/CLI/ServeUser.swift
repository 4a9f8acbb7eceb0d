import Foundation
import Server
#if canImport(Glibc)
import Glibc
#endif

/// Who `epr serve` runs as. It needs no privilege (packages are verified in a virtual machine,
/// and the default port is above 1024), so it does not run as root: started as root it switches
/// to the user named with `--user` once its data directory and the files it reads are that
/// user's, and without one it refuses to start unless the operator allows root (`--allow-root`,
/// for `verifier = "host"`).
enum ServeUser {
    struct Refusal: Error, CustomStringConvertible {
        let description: String
    }

    /// An unprivileged user to switch to.
    struct Account {
        var name: String
        var uid: uid_t
        var gid: gid_t
    }

    /// The rule for this process: nil when it is not root or root is allowed, the account to
    /// switch to when one is named; a refusal otherwise, before anything is made.
    static func account(named name: String?, allowRoot: Bool) throws -> Account? {
        guard geteuid() == 0 else { return nil }
        guard let name else {
            if allowRoot { return nil }
            throw Refusal(description: """
                epr serve does not run as root: it needs no privilege. Run it as an unprivileged user, \
                or give --user NAME (EPR_USER) to switch to that user, or --allow-root (EPR_ALLOW_ROOT=true) \
                for a host-kernel verifier (verifier = "host")
                """)
        }
        guard let entry = getpwnam(name) else { throw Refusal(description: "--user \(name): there is no such user") }
        guard entry.pointee.pw_uid != 0 else { throw Refusal(description: "--user \(name) is root; name an unprivileged user") }
        return Account(name: name, uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid)
    }

    /// Makes the data directory the account's, with everything in it.
    static func give(dataDirectory: String, to account: Account) throws {
        let data = URL(fileURLWithPath: dataDirectory)
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try chownTree(data.path, account.uid, account.gid)
    }

    /// Switches this process to the account for good (root cannot be taken back). Called while
    /// the process has one thread: the switch then holds for every thread it starts.
    static func switchTo(_ account: Account) throws {
        guard setgroups(0, nil) == 0, setgid(account.gid) == 0, setuid(account.uid) == 0 else {
            throw Refusal(description: "cannot switch to the user \(account.name): \(String(cString: strerror(errno)))")
        }
        guard setuid(0) != 0 else { throw Refusal(description: "root could be taken back after switching to \(account.name)") }
    }

    /// The files outside the data directory the server reads at start: the TLS certificate and
    /// key, and the trust directory's certificates, intermediate key and revocations (never
    /// the root's key).
    static func filesRead(by configuration: ServerConfiguration) -> [String] {
        var files = [configuration.tlsCertificate, configuration.tlsKey].compactMap { $0 }
        if let trust = configuration.trustDirectory {
            files += ["root.crt", "roots.pem", "intermediate.crt", "intermediate.key", "revocations.json"]
                .map { URL(fileURLWithPath: trust).appendingPathComponent($0).path }
                .filter { FileManager.default.fileExists(atPath: $0) }
        }
        return files
    }

    /// Gives files to the account (each one, not the directories they are in).
    static func give(files: [String], to account: Account) throws {
        for file in files where lchown(file, account.uid, account.gid) != 0 {
            throw Refusal(description: "cannot give \(file) to the user \(account.name): \(String(cString: strerror(errno)))")
        }
    }

    /// Gives a directory tree to the user, without following links.
    private static func chownTree(_ path: String, _ uid: uid_t, _ gid: gid_t) throws {
        guard lchown(path, uid, gid) == 0 else { throw Refusal(description: "cannot give \(path) to the user: \(String(cString: strerror(errno)))") }
        var status = stat()
        guard lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else { return }
        for name in try FileManager.default.contentsOfDirectory(atPath: path) {
            try chownTree(path + "/" + name, uid, gid)
        }
    }
}

/// Secrets given in the environment (passphrases, the first admin's token, client secrets) are
/// read once and then wiped: overwritten where the process keeps them (which is also what
/// `/proc/PID/environ` shows) and removed, so that no child process inherits them and nothing
/// that reads the server's memory or environment later finds them there.
enum SecretEnvironment {
    static func isSecret(_ key: String) -> Bool {
        key == "EPR_ADMIN_TOKEN" || key.hasSuffix("_PASSPHRASE") && key.hasPrefix("EPR_")
            || key.hasPrefix("EPR_OIDC_") && key.hasSuffix("_CLIENT_SECRET")
    }

    static func scrub() {
        var pointer = environ
        var keys: [String] = []
        while let entry = pointer.pointee {
            if let equals = strchr(entry, Int32(UInt8(ascii: "="))) {
                let key = String(decoding: UnsafeRawBufferPointer(start: entry, count: equals - entry), as: UTF8.self)
                if isSecret(key) {
                    memset(equals + 1, 0, strlen(equals + 1))
                    keys.append(key)
                }
            }
            pointer += 1
        }
        for key in keys { unsetenv(key) }
    }
}
