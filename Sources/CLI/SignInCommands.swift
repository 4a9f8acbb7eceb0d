import ArgumentParser
import Client
import Foundation
import RegistryAPI

/// `epr login`, `epr logout`, `epr register`, `epr password`, `epr totp ...`.
struct LoginCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login", abstract: "Sign in with a password and save an API token for this machine.",
        discussion: "Asks for what it is not given. The token gets every right of the user's role, expires in 30 days unless told otherwise, and is saved in the [client] table of the config file (mode 0600), where the other commands find it.")
    @Option(help: "The user name.") var user: String?
    @Flag(help: "Read the password from the first line of standard input.") var passwordStdin = false
    @Option(help: "The current code of your authenticator app, when the account has one.") var otp: String?
    @Option(help: "A recovery code instead of --otp.") var recoveryCode: String?
    @Option(help: "What to call the token (default: epr on this host).") var tokenName: String?
    @Option(help: "Days until the token expires (default 30).") var expiresInDays: Int?
    @Flag(help: "Print the token instead of saving it.") var print = false
    @Option(help: "Sign in in a browser with this OpenID Connect provider instead of a password.") var oidc: String?
    @Flag(help: "With --oidc: only print the address to open, do not start a browser.") var noBrowser = false
    @OptionGroup var options: ClientOptions

    func run() async throws {
        let client = try options.client()
        if let oidc {
            try await finish(client, try await browserSignIn(client, provider: oidc))
            return
        }
        let name = try user ?? Prompt.line("User: ")
        let password = try passwordStdin ? Prompt.standardInputLine() : Prompt.secret("Password: ")
        let host = ProcessInfo.processInfo.hostName
        var request = SignInRequest(name: name, password: password, otp: otp, recovery_code: recoveryCode,
                                    token_name: tokenName ?? "epr on \(host)", expires_in_days: expiresInDays)
        let data: Data
        do {
            data = try await client.signInForToken(request)
        } catch let problem as RegistryProblem where problem.code == "second-factor-required" && !passwordStdin {
            request.otp = try Prompt.line("Code from your authenticator app: ")
            data = try await reportingProblems { try await client.signInForToken(request) }
        } catch {
            data = try await reportingProblems { throw error }
        }
        try await finish(client, data)
    }

    /// Starts a browser sign-in, shows its address, and waits for the browser to come back to
    /// a port on this machine with the code that collects the token.
    func browserSignIn(_ client: RegistryClient, provider: String) async throws -> Data {
        let listener = try LoopbackListener()
        defer { listener.close() }
        let host = ProcessInfo.processInfo.hostName
        let started = try await reportingProblems {
            try await client.beginBrowserSignIn(CommandLineSignInRequest(provider: provider, redirect_port: listener.port,
                                                                         token_name: tokenName ?? "epr on \(host)", expires_in_days: expiresInDays))
        }.decoded(CommandLineSignInBody.self)
        guard started.url.hasPrefix(client.baseURL + "/") else {
            Output.error("the registry sent a sign-in address elsewhere (\(started.url)); not opening it")
            throw ReportedFailure()
        }
        Output.error("Open this address in a browser on this machine to sign in with \(provider):\n  \(started.url)")
        if !noBrowser, let opener = ["/usr/bin/xdg-open", "/usr/bin/open"].first(where: FileManager.default.isExecutableFile) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: opener)
            process.arguments = [started.url]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try? process.run()
        }
        let answer = try await listener.awaitRedirect(timeout: TimeInterval(started.expires_in))
        if let error = answer["error"] {
            Output.error("the sign-in was refused: \(error)")
            throw ReportedFailure()
        }
        guard let code = answer["code"] else {
            Output.error("the browser came back without a code")
            throw ReportedFailure()
        }
        return try await reportingProblems { try await client.collectBrowserSignIn(id: started.id, secret: started.secret, code: code) }
    }

    func finish(_ client: RegistryClient, _ data: Data) async throws {
        let token = try data.decoded(TokenBody.self)
        guard let secret = token.token, secret.hasPrefix("epr_"), secret.count <= 200,
              secret.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || $0 == "_") }) else {
            throw ValidationError("the registry returned no usable token")
        }
        if options.json { data.printJSON(); if !print { try ClientConfigFile.save(registry: client.baseURL, token: secret) }; return }
        if print {
            Output.line(secret)
            return
        }
        let path = try ClientConfigFile.save(registry: client.baseURL, token: secret)
        Output.line("signed in as \(token.user) at \(client.baseURL); token \(token.id) saved in \(path) (expires \(AccountText.date(token.expires_at)))")
    }
}

struct LogoutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logout", abstract: "Revoke the saved token and remove it from the config file.")
    @OptionGroup var options: ClientOptions

    func run() async throws {
        let client = try options.client()
        let account = try await reportingProblems { try await client.me() }.decoded(AccountBody.self)
        if let id = account.token?.id { _ = try await reportingProblems { try await client.revokeToken(id) } }
        let path = try ClientConfigFile.removeToken()
        Output.line("signed out \(account.user.name); token \(account.token?.id ?? "-") revoked and removed from \(path)")
    }
}

struct RegisterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "register", abstract: "Register a user, with an invitation code unless the registry is open.")
    @Argument(help: "The user name (lower-case letters, digits, - and _).") var name: String
    @Option(help: "The invitation code an admin gave you.") var invitation: String?
    @Flag(help: "Read the password from the first line of standard input.") var passwordStdin = false
    @OptionGroup var options: ClientOptions

    func run() async throws {
        let password = try passwordStdin ? Prompt.standardInputLine() : Prompt.newSecret()
        let data = try await reportingProblems {
            try await options.client().register(RegistrationRequest(name: name, password: password, invitation: invitation))
        }
        if options.json { data.printJSON(); return }
        let user = try data.decoded(UserBody.self)
        Output.line("registered \(user.name) (\(user.role)); sign in with: epr login --user \(user.name)")
    }
}

struct PasswordCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "password", abstract: "Change your password (every web session ends).")
    @Flag(help: "Read the current and the new password from the first two lines of standard input.") var passwordStdin = false
    @OptionGroup var options: ClientOptions

    func run() async throws {
        let current = try passwordStdin ? Prompt.standardInputLine() : Prompt.secret("Current password: ")
        let new = try passwordStdin ? Prompt.standardInputLine() : Prompt.newSecret()
        try await reportingProblems { try await options.client().changePassword(current: current, new: new) }
        Output.line("password changed")
    }
}

struct SecondFactorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "totp", abstract: "Enrol, show or remove the second factor (an authenticator app).",
        subcommands: [Status.self, Enable.self, Disable.self])

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Whether a second factor is enrolled.")
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let data = try await reportingProblems { try await options.client().secondFactor() }
            if options.json { data.printJSON(); return }
            let status = try data.decoded(SecondFactorBody.self)
            Output.line(status.enabled ? "enabled; \(status.recovery_codes_left ?? 0) recovery codes left" : "not enrolled")
        }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Enrol an authenticator app: shows its secret, asks for a code, prints recovery codes once.")
        @Flag(help: "Read the password from the first line of standard input.") var passwordStdin = false
        @Option(help: "The code to confirm with (asked for when absent).") var code: String?
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let client = try options.client()
            let password = try passwordStdin ? Prompt.standardInputLine() : Prompt.secret("Password: ")
            let begin = try await reportingProblems { try await client.beginSecondFactor(password: password) }.decoded(SecondFactorBody.self)
            Output.error("Add this to your authenticator app:\n  secret \(begin.secret ?? "")\n  \(begin.uri ?? "")")
            let confirmation = try code ?? Prompt.line("Code shown by the app: ")
            let data = try await reportingProblems { try await client.confirmSecondFactor(code: confirmation) }
            if options.json { data.printJSON(); return }
            let done = try data.decoded(SecondFactorBody.self)
            Output.line("second factor enabled. Recovery codes (each works once; keep them safe, they are not shown again):")
            for code in done.recovery_codes ?? [] { Output.line("  \(code)") }
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove the second factor (needs the password and a code).")
        @Flag(help: "Read the password from the first line of standard input.") var passwordStdin = false
        @Option(help: "A current code or a recovery code.") var code: String?
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let password = try passwordStdin ? Prompt.standardInputLine() : Prompt.secret("Password: ")
            let confirmation = try code ?? Prompt.line("Code (or a recovery code): ")
            try await reportingProblems { try await options.client().removeSecondFactor(password: password, code: confirmation) }
            Output.line("second factor removed")
        }
    }
}

/// Questions on the terminal; secrets are read without echo.
enum Prompt {
    static func line(_ question: String) throws -> String {
        FileHandle.standardError.write(Data(question.utf8))
        guard let answer = readLine(strippingNewline: true), !answer.isEmpty else { throw ValidationError("no answer given") }
        return answer
    }

    static func standardInputLine() throws -> String {
        guard let answer = readLine(strippingNewline: true), !answer.isEmpty else { throw ValidationError("expected a line on standard input") }
        return answer
    }

    static func secret(_ question: String) throws -> String {
        guard isatty(STDIN_FILENO) == 1 else { return try line(question) }
        guard let raw = getpass(question) else { throw ValidationError("could not read a password from the terminal") }
        let answer = String(cString: raw)
        guard !answer.isEmpty else { throw ValidationError("no password given") }
        return answer
    }

    static func newSecret() throws -> String {
        let first = try secret("New password: ")
        guard isatty(STDIN_FILENO) == 1 else { return first }
        guard try secret("Again: ") == first else { throw ValidationError("the passwords differ") }
        return first
    }
}

/// The client config file (`EPR_CONFIG`, else ~/.config/epr/config.toml): its `[client]`
/// table gets the registry and token lines; everything else in the file stays as it is.
enum ClientConfigFile {
    static var path: String {
        let environment = ProcessInfo.processInfo.environment
        return environment["EPR_CONFIG"] ?? "\(environment["HOME"] ?? NSHomeDirectory())/.config/epr/config.toml"
    }

    @discardableResult
    static func save(registry: String, token: String) throws -> String {
        try update(["registry": registry, "token": token])
    }

    @discardableResult
    static func removeToken() throws -> String { try update(["token": nil]) }

    /// Sets (or, for nil, removes) keys of the `[client]` table, writing the file atomically
    /// with mode 0600.
    static func update(_ values: [String: String?]) throws -> String {
        let path = self.path
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        for case let value? in values.values where value.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            throw ValidationError("refusing to write a value with control characters to \(path)")
        }
        let bytes = Array(edit(text, values).utf8)
        // Readable by its owner only from the first byte, whole on disk before it replaces the old file.
        let temporary = path + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ValidationError("cannot write \(temporary)") }
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == bytes.count, synced, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw ValidationError("cannot replace \(path)")
        }
        return path
    }

    /// The text with the keys of `[client]` set or removed.
    static func edit(_ text: String, _ values: [String: String?]) -> String {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        func isTable(_ line: String) -> Bool { line.trimmingCharacters(in: .whitespaces).hasPrefix("[") }
        func key(_ line: String) -> String? {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            guard !trimmed.hasPrefix("#"), let equals = trimmed.firstIndex(of: "=") else { return nil }
            return trimmed[..<equals].trimmingCharacters(in: .whitespaces)
        }
        func quoted(_ value: String) -> String {
            "\"" + value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
        var start = lines.firstIndex { $0.trimmingCharacters(in: .whitespaces) == "[client]" }
        if start == nil {
            if !lines.isEmpty { lines.append("") }
            lines.append("[client]")
            start = lines.count - 1
        }
        var end = lines.count
        for index in (start! + 1)..<lines.count where isTable(lines[index]) { end = index; break }
        var table = Array(lines[(start! + 1)..<end])
        for (name, value) in values.sorted(by: { $0.key < $1.key }) {
            table.removeAll { key($0) == name }
            if let value { table.insert("\(name) = \(quoted(value))", at: table.lastIndex { key($0) != nil }.map { $0 + 1 } ?? 0) }
        }
        lines.replaceSubrange((start! + 1)..<end, with: table)
        return lines.joined(separator: "\n") + "\n"
    }
}

extension UserCommand {
    struct ResetPassword: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reset-password", abstract: "Give a user a new random password (shown once); their sessions end.")
        @Argument(help: "The user name.") var name: String
        @Flag(help: "Also remove the user's second factor (a lost authenticator).") var removeSecondFactor = false
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let data = try await reportingProblems { try await options.client().resetPassword(of: name, removeSecondFactor: removeSecondFactor) }
            if options.json { data.printJSON(); return }
            Output.line(try data.decoded(PasswordResetBody.self).password)
            Output.error("new password of \(name), shown only now; they should change it with epr password")
        }
    }

    struct Invite: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make an invitation code to register with (shown once).")
        @Option(help: "The role the new user gets: admin, reviewer, publisher or user.") var role = "user"
        @Option(help: "Days until the code expires (1 to 90).") var expiresInDays = 7
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let data = try await reportingProblems { try await options.client().createSignupInvitation(role: role, expiresInDays: expiresInDays) }
            if options.json { data.printJSON(); return }
            let invitation = try data.decoded(SignupInvitationBody.self)
            Output.line(invitation.code ?? "")
            Output.error("invitation \(invitation.id) for a \(invitation.role), until \(AccountText.date(invitation.expires_at)): epr register NAME --invitation CODE")
        }
    }

    struct Invitations: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List invitations to register.")
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let data = try await reportingProblems { try await options.client().signupInvitations() }
            if options.json { data.printJSON(); return }
            for invitation in try data.decoded([SignupInvitationBody].self) {
                Output.line("\(invitation.id)\t\(invitation.role)\t\(invitation.created_by)\t"
                    + (invitation.used_by.map { "used by \($0)" } ?? "until \(AccountText.date(invitation.expires_at))"))
            }
        }
    }
}
