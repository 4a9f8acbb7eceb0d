import ArgumentParser
import Client
import Foundation
import RegistryAPI

/// `epr whoami`, `epr token ...`, `epr user ...`, `epr owner ...`, `epr audit`.
struct WhoAmICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "whoami", abstract: "Show the user and token the registry sees.")
    @OptionGroup var options: ClientOptions

    func run() async throws {
        let data = try await reportingProblems { try await options.client().me() }
        if options.json { data.printJSON(); return }
        let account = try data.decoded(AccountBody.self)
        Output.line("\(account.user.name) (\(account.user.role))")
        if let token = account.token { Output.line("token \(token.id) \"\(token.name)\": " + AccountText.scopes(token)) }
    }
}

enum AccountText {
    static func scopes(_ token: TokenBody) -> String {
        (token.scopes.isEmpty ? "no scopes" : token.scopes.joined(separator: ", "))
            + (token.packages.isEmpty ? "" : "; packages " + token.packages.joined(separator: ", "))
    }

    static func date(_ date: Date?) -> String {
        guard let date else { return "-" }
        return ISO8601DateFormatter().string(from: date)
    }
}

struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Create, list and revoke API tokens.",
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a token; it is printed once and never shown again.",
            discussion: "Scopes: publish-new, publish-update, yank, owners, review, sign, admin, build (a build worker's; admins only). A token never carries more than its user's role allows, nor more than the token that creates it.")
        @Argument(help: "What the token is for.") var name: String
        @Option(name: .customLong("scope"), help: "A scope (repeat for several).") var scopes: [String] = []
        @Option(name: .customLong("package"), help: "Limit to packages matching this pattern, such as l3af-* (repeat for several).")
        var packages: [String] = []
        @Option(help: "Days until the token expires (default: until revoked).") var expiresInDays: Int?
        @Option(help: "Issue the token for another user (admins).") var user: String?
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let request = TokenRequest(name: name, scopes: scopes, packages: packages.isEmpty ? nil : packages, expires_in_days: expiresInDays,
                                       user: user)
            let data = try await reportingProblems { try await options.client().createToken(request) }
            if options.json { data.printJSON(); return }
            let token = try data.decoded(TokenBody.self)
            Output.line(token.token ?? "")
            Output.error("token \(token.id) for \(token.user): \(AccountText.scopes(token)); expires \(AccountText.date(token.expires_at)). "
                + "Store it now: it is not shown again.")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List your tokens (or a user's, for admins).")
        @Option(help: "Whose tokens (admins).") var user: String?
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let data = try await reportingProblems { try await options.client().tokens(user: user) }
            if options.json { data.printJSON(); return }
            for token in try data.decoded([TokenBody].self) {
                let state = token.revoked_at != nil ? "revoked" : (token.expires_at.map { $0 < Date() } ?? false) ? "expired" : "active"
                Output.line("\(token.id)\t\(state)\t\(token.name)\t\(AccountText.scopes(token))\tlast used \(AccountText.date(token.last_used_at))")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token by its id.")
        @Argument(help: "The token's id (tok_...).") var id: String
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let data = try await reportingProblems { try await options.client().revokeToken(id) }
            if options.json { data.printJSON(); return }
            Output.line("revoked \(id)")
        }
    }
}

struct UserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user", abstract: "Manage users (admins).",
        subcommands: [Create.self, List.self, Set.self, ResetPassword.self, Invite.self, Invitations.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a user.")
        @Argument(help: "The user name.") var name: String
        @Option(help: "admin, reviewer, publisher or user.") var role = "user"
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let data = try await reportingProblems { try await options.client().createUser(name, role: role) }
            if options.json { data.printJSON(); return }
            Output.line("created \(name) (\(role))")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List users.")
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let data = try await reportingProblems { try await options.client().users() }
            if options.json { data.printJSON(); return }
            for user in try data.decoded([UserBody].self) { Output.line("\(user.name)\t\(user.role)" + (user.disabled ? "\tdisabled" : "")) }
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a user's role, or disable or enable the user.")
        @Argument(help: "The user name.") var name: String
        @Option(help: "The new role.") var role: String?
        @Flag(help: "Disable the user: its tokens stop working.") var disable = false
        @Flag(help: "Enable the user again.") var enable = false
        @OptionGroup var options: ClientOptions

        func validate() throws {
            if disable && enable { throw ValidationError("--disable or --enable, not both") }
            if role == nil && !disable && !enable { throw ValidationError("give --role, --disable or --enable") }
        }

        func run() async throws {
            let disabled: Bool? = disable ? true : enable ? false : nil
            let data = try await reportingProblems { try await options.client().updateUser(name, role: role, disabled: disabled) }
            if options.json { data.printJSON(); return }
            let user = try data.decoded(UserBody.self)
            Output.line("\(user.name)\t\(user.role)" + (user.disabled ? "\tdisabled" : ""))
        }
    }
}

struct OwnerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "owner", abstract: "Package owners: only owners publish new versions, yank and manage owners.",
        subcommands: [List.self, Add.self, Remove.self, Transfer.self, Invitations.self, Accept.self, Decline.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a package's owners and pending invitations.")
        @Argument(help: "The package.") var package: String
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let data = try await reportingProblems { try await options.client().owners(package) }
            if options.json { data.printJSON(); return }
            let owners = try data.decoded(OwnersBody.self)
            for owner in owners.owners { Output.line(owner) }
            for invited in owners.invited {
                Output.line("\(invited.user)\t\(invited.transfer == true ? "offered the package" : "invited") by \(invited.invited_by)")
            }
            if let org = owners.organisation { Output.line("organisation \(org) (its members own the package too)") }
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Invite a user to own a package; they become an owner once they accept.")
        @Argument(help: "The package.") var package: String
        @Argument(help: "The user.") var user: String
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let data = try await reportingProblems { try await options.client().inviteOwner(package, user: user) }
            if options.json { data.printJSON(); return }
            Output.line("invited \(user) to own \(package); they accept with: epr owner accept \(package)")
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove an owner (or withdraw an invitation); the last owner stays.")
        @Argument(help: "The package.") var package: String
        @Argument(help: "The user.") var user: String
        @OptionGroup var options: ClientOptions

        func run() async throws {
            try await reportingProblems { try await options.client().removeOwner(package, user: user) }
            Output.line("\(user) no longer owns \(package)")
        }
    }

    struct Invitations: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List your pending ownership invitations.")
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let data = try await reportingProblems { try await options.client().invitations() }
            if options.json { data.printJSON(); return }
            for invitation in try data.decoded([InvitationBody].self) { Output.line("\(invitation.package)\tfrom \(invitation.invited_by)") }
        }
    }

    struct Accept: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Accept an invitation to own a package.")
        @Argument(help: "The package.") var package: String
        @OptionGroup var options: ClientOptions

        func run() async throws {
            try await reportingProblems { try await options.client().answerInvitation(package, accept: true) }
            Output.line("you now own \(package)")
        }
    }

    struct Decline: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Decline an invitation to own a package.")
        @Argument(help: "The package.") var package: String
        @OptionGroup var options: ClientOptions

        func run() async throws {
            try await reportingProblems { try await options.client().answerInvitation(package, accept: false) }
            Output.line("declined \(package)")
        }
    }
}

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "audit", abstract: "Read the audit log, newest first (admins).")
    @Option(help: "Only actions by this user.") var actor: String?
    @Option(help: "Only this action (publish, yank, token.create, auth, ...).") var action: String?
    @Option(help: "The page of records.") var page = 1
    @OptionGroup var options: ClientOptions

    func run() async throws {
        let data = try await reportingProblems { try await options.client().audit(actor: actor, action: action, page: page) }
        if options.json { data.printJSON(); return }
        let result = try data.decoded(PageBody<AuditBody>.self)
        for record in result.items {
            Output.line([AccountText.date(record.at), record.actor ?? "-", record.action, record.target ?? "-", record.outcome,
                         record.address ?? "-", record.token_id ?? "-", record.detail ?? ""].joined(separator: "\t"))
        }
        if result.total > result.page * result.per_page { Output.line("more with --page \(result.page + 1)") }
    }
}
