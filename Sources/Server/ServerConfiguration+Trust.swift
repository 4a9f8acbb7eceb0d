import Foundation

extension ServerConfiguration {
    static let trustKeys: [(file: String, environment: String)] = [
        ("trust_directory", "EPR_TRUST_DIRECTORY"), ("signer", "EPR_SIGNER"), ("require_signatures", "EPR_REQUIRE_SIGNATURES"),
        ("certificate_days", "EPR_CERTIFICATE_DAYS"), ("repository_name", "EPR_REPOSITORY_NAME"),
    ]

    /// The signing authority's settings. The intermediate key's passphrase comes from
    /// `EPR_TRUST_PASSPHRASE` only, never from the file.
    static func applyTrust(_ values: [String: String], to configuration: inout ServerConfiguration) throws {
        if let directory = values["trust_directory"] { configuration.trustDirectory = directory }
        if let socket = values["signer"] {
            guard socket.hasPrefix("/"), socket.utf8.count < 108 else { throw Invalid(description: "signer \(socket) is not the absolute path of a local socket (at most 107 bytes)") }
            configuration.signer = socket
        }
        if configuration.signer != nil, configuration.trustDirectory != nil {
            throw Invalid(description: "trust_directory and signer are not set together: with a signer, the keys and the trust directory are the signer's")
        }
        try flag(values, "require_signatures", into: &configuration.requireSignatures)
        if let text = values["certificate_days"] {
            guard let days = Int(text), (1...3650).contains(days) else { throw Invalid(description: "certificate_days \(text) is not a number from 1 to 3650") }
            configuration.certificateDays = days
        }
        if let name = values["repository_name"] {
            guard name.range(of: "^[A-Za-z0-9][A-Za-z0-9.-]{0,62}$", options: .regularExpression) != nil else {
                throw Invalid(description: "repository_name \(name) must be 1 to 63 letters, digits, . and -")
            }
            configuration.repositoryName = name
        }
        if configuration.requireSignatures, configuration.trustDirectory == nil, configuration.signer == nil {
            throw Invalid(description: "require_signatures needs trust_directory or signer: signatures are checked against the root")
        }
    }
}
