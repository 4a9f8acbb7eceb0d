import ArgumentParser
import Client
import Foundation
import RegistryAPI

/// `epr org ...` and `epr owner transfer`.
struct OrganisationCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "org", abstract: "Organisations: namespaces whose members own packages together.",
        subcommands: [List.self, Show.self, Create.self, Add.self, Remove.self, Package.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List organisations.")
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let data = try await reportingProblems { try await options.client().organisations() }
            if options.json { data.printJSON(); return }
            for org in try data.decoded([OrganisationBody].self) { Output.line("\(org.name)\t\(org.description)") }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show an organisation's members and packages.")
        @Argument(help: "The organisation.") var name: String
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let data = try await reportingProblems { try await options.client().organisation(name) }
            if options.json { data.printJSON(); return }
            let org = try data.decoded(OrganisationBody.self)
            Output.line("\(org.name): \(org.description)")
            for member in org.members ?? [] { Output.line("  member \(member.user) (\(member.role))") }
            for package in org.packages ?? [] { Output.line("  package \(package)") }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an organisation (admins); new packages named NAME or NAME-... are then its members' only.")
        @Argument(help: "The organisation's name.") var name: String
        @Option(help: "Its first admin.") var admin: String
        @Option(help: "What it is.") var description = ""
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let data = try await reportingProblems { try await options.client().createOrganisation(name, description: description, admin: admin) }
            if options.json { data.printJSON(); return }
            Output.line("created the organisation \(name) with admin \(admin)")
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a member, or change a member's role (the organisation's admins).")
        @Argument(help: "The organisation.") var org: String
        @Argument(help: "The user.") var user: String
        @Option(help: "admin or member.") var role = "member"
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let data = try await reportingProblems { try await options.client().setMember(org, user: user, role: role) }
            if options.json { data.printJSON(); return }
            Output.line("\(user) is a\(role == "admin" ? "n" : "") \(role) of \(org)")
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a member (the organisation's admins, or members themselves).")
        @Argument(help: "The organisation.") var org: String
        @Argument(help: "The user.") var user: String
        @OptionGroup var options: ClientOptions

        func run() async throws {
            try await reportingProblems { try await options.client().removeMember(org, user: user) }
            Output.line("\(user) is no longer a member of \(org)")
        }
    }

    struct Package: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move a package into an organisation (its owners who are admins there), or out with --remove.")
        @Argument(help: "The package.") var package: String
        @Argument(help: "The organisation.") var org: String?
        @Flag(help: "Take the package out of its organisation.") var remove = false
        @OptionGroup var options: ClientOptions

        func validate() throws {
            if remove == (org != nil) { throw ValidationError("name the organisation, or give --remove") }
        }

        func run() async throws {
            try await reportingProblems { try await options.client().setOrganisation(ofPackage: package, to: remove ? nil : org) }
            Output.line(remove ? "\(package) no longer belongs to an organisation" : "\(package) now belongs to \(org ?? "")")
        }
    }
}

extension OwnerCommand {
    struct Transfer: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Offer a package to a user, who becomes its only owner on accepting (epr owner accept).")
        @Argument(help: "The package.") var package: String
        @Argument(help: "The new owner.") var user: String
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let data = try await reportingProblems { try await options.client().transfer(package, to: user) }
            if options.json { data.printJSON(); return }
            Output.line("offered \(package) to \(user); it passes to them when they accept")
        }
    }
}
