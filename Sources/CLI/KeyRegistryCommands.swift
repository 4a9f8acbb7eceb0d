import ArgumentParser
import Client
import Crypto
import Foundation
import RegistryAPI
import Signing

/// `epr key certify|list|revoke`: certificates the repository issues for one's signing keys.
extension KeyCommand {
    struct Certify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Have the repository certify a signing key for packages your grants cover; writes the certificate chain.",
            discussion: "The private key signs a proof that you hold it; only the public key is sent.")
        @Argument(help: "The private key (from epr key generate).") var key: String
        @Option(help: "A package name or pattern the certificate is to allow; repeat for more (default: all your grants).") var package: [String] = []
        @Option(name: .shortAndLong, help: "Where to write the chain (default: KEY with .chain.pem instead of .key).") var output: String?
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let client = try options.client()
            let privateKey = try Passphrase.openKey(at: key)
            let me = try await reportingProblems { try await client.me().decoded(AccountBody.self) }.user
            let keyID = SigningKeys.keyID(privateKey.publicKey)
            let proof = try privateKey.signature(for: Data(SigningKeyRequest.proofMessage(user: me.name, keyID: keyID).utf8))
            let request = SigningKeyRequest(public_key: privateKey.publicKey.pemRepresentation,
                                            proof: proof.derRepresentation.base64EncodedString(), packages: package.isEmpty ? nil : package)
            let data = try await reportingProblems { try await client.certifyKey(request) }
            let certificate = try data.decoded(SigningCertificateBody.self)
            let destination = output ?? (key.hasSuffix(".key") ? String(key.dropLast(4)) : key) + ".chain.pem"
            try certificate.chain.write(toFile: destination, atomically: true, encoding: .utf8)
            if options.json { data.printJSON(); return }
            Output.line("certified key \(keyID) for \(certificate.packages.joined(separator: ", ")) until \(certificate.not_after.formatted(.iso8601))")
            Output.line("chain: \(destination) (epr sign --certificate \(destination))")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the certificates issued for your keys (admins: --user, --all).")
        @Option(help: "Another user's (admins).") var user: String?
        @Flag(help: "Everyone's (admins).") var all = false
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let client = try options.client()
            let data = try await reportingProblems { try await client.signingKeys(user: user, all: all) }
            if options.json { data.printJSON(); return }
            let list = try data.decoded([SigningCertificateBody].self)
            if list.isEmpty { Output.line("no certificates"); return }
            for item in list {
                Output.line("\(item.key_id.prefix(16))  \(item.status.padding(toLength: 8, withPad: " ", startingAt: 0))  \(item.user)  "
                            + "\(item.packages.joined(separator: ","))  until \(item.not_after.formatted(.iso8601))  serial \(item.serial)"
                            + (item.revoke_reason.map { "  (\($0))" } ?? ""))
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke every certificate of a signing key (yours, or anyone's for admins): nodes refuse its signatures from then on.")
        @Argument(help: "The key's id (epr key list).") var keyID: String
        @Option(help: "Why.") var reason: String?
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let client = try options.client()
            let data = try await reportingProblems { try await client.revokeKey(keyID, reason: reason) }
            if options.json { data.printJSON(); return }
            let revoked = try data.decoded([SigningCertificateBody].self)
            Output.line("revoked key \(keyID): \(revoked.count) certificate(s) now listed in the repository's revocation list")
        }
    }
}

/// `epr signing grant|grants|ungrant`: who may have keys certified for which packages.
struct SigningGrantCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "signing", abstract: "Grant users the right to have signing keys certified for packages (admins, organisation admins).",
        subcommands: [Grant.self, Grants.self, Ungrant.self])

    struct Grant: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Let a user have keys certified for package names or patterns.")
        @Argument(help: "The user.") var user: String
        @Argument(help: "Package names or patterns (acme-*).") var packages: [String]
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let client = try options.client()
            let data = try await reportingProblems { try await client.grantSigning(user: user, packages: packages) }
            if options.json { data.printJSON(); return }
            for grant in try data.decoded([SigningGrantBody].self) { Output.line("granted \(grant.user) signing for \(grant.pattern) (grant \(grant.id))") }
        }
    }

    struct Grants: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List signing grants: yours, a user's, or all (admins).")
        @Option(help: "A user's.") var user: String?
        @Flag(help: "Everyone's (admins).") var all = false
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let client = try options.client()
            let data = try await reportingProblems { try await client.signingGrants(user: user, all: all) }
            if options.json { data.printJSON(); return }
            let list = try data.decoded([SigningGrantBody].self)
            if list.isEmpty { Output.line("no grants") }
            for grant in list { Output.line("\(grant.id)  \(grant.user)  \(grant.pattern)  by \(grant.granted_by)") }
        }
    }

    struct Ungrant: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take a grant back (certificates issued under it stay valid until revoked or expired).")
        @Argument(help: "The grant's number (epr signing grants).") var id: Int
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let client = try options.client()
            try await reportingProblems { try await client.removeSigningGrant(id) }
            Output.line("removed grant \(id)")
        }
    }
}
