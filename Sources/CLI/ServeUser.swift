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
    static func account(named name: String?, allowRoot: Bool, command: String = "epr serve") throws -> Account? {
        guard geteuid() == 0 else { return nil }
        guard let name else {
            if allowRoot { return nil }
            if command != "epr serve" {
                throw Refusal(description: "\(command) does not run as root: it needs no privilege. Run it as a user of its own, or give --user NAME to switch to one")
            }
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

    /// Makes the data directory the account's, with everything in it. Walked by descriptor,
    /// never following a link, so that nothing in it can lead the walk out of it.
    static func give(dataDirectory: String, to account: Account) throws {
        let data = URL(fileURLWithPath: dataDirectory)
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let top = open(data.path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard top >= 0 else { throw Refusal(description: "cannot open \(data.path): \(String(cString: strerror(errno)))") }
        defer { close(top) }
        guard fchown(top, account.uid, account.gid) == 0 else {
            throw Refusal(description: "cannot give \(data.path) to the user \(account.name): \(String(cString: strerror(errno)))")
        }
        try giveContents(of: top, path: data.path, to: account)
    }

    /// Gives every entry of the open directory `fd` to the account, recursing into directories.
    private static func giveContents(of fd: Int32, path: String, to account: Account) throws {
        let copy = dup(fd)
        guard copy >= 0, let directory = fdopendir(copy) else { throw Refusal(description: "cannot read \(path)") }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard name != ".", name != ".." else { continue }
            guard fchownat(fd, name, account.uid, account.gid, AT_SYMLINK_NOFOLLOW) == 0 else {
                throw Refusal(description: "cannot give \(path)/\(name) to the user \(account.name): \(String(cString: strerror(errno)))")
            }
            let child = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard child >= 0 else { continue }
            defer { close(child) }
            try giveContents(of: child, path: path + "/" + name, to: account)
        }
    }

    /// Switches this process to the account for good (root cannot be taken back). Called while
    /// the process has one thread: the switch then holds for every thread it starts.
    static func switchTo(_ account: Account) throws {
        guard setgroups(0, nil) == 0, setgid(account.gid) == 0, setuid(account.uid) == 0 else {
            throw Refusal(description: "cannot switch to the user \(account.name): \(String(cString: strerror(errno)))")
        }
        guard setuid(0) != 0 else { throw Refusal(description: "root could be taken back after switching to \(account.name)") }
    }

    /// The files outside the data directory the server reads: the config file, the TLS
    /// certificate and key, and the trust directory with its certificates, intermediate key and
    /// revocations (never the root's key).
    static func filesRead(by configuration: ServerConfiguration, configFile: String?) -> [String] {
        var files = [configuration.tlsCertificate, configuration.tlsKey, configFile].compactMap { $0 }
        if let trust = configuration.trustDirectory {
            // The directory itself too (trust init makes it 0700): the files in it are read by name.
            files += [trust] + ["root.crt", "roots.pem", "intermediate.crt", "intermediate.key", "revocations.json"]
                .map { URL(fileURLWithPath: trust).appendingPathComponent($0).path }
                .filter { FileManager.default.fileExists(atPath: $0) }
        }
        return files
    }

    /// Gives files the operator named to the account (each one, the file a link names, not the
    /// directories they are in).
    static func give(files: [String], to account: Account) throws {
        for file in files where chown(file, account.uid, account.gid) != 0 {
            throw Refusal(description: "cannot give \(file) to the user \(account.name): \(String(cString: strerror(errno)))")
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
