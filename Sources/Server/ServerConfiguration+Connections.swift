import Foundation

extension ServerConfiguration {
    static let connectionKeys: [(file: String, environment: String)] = [
        ("header_timeout", "EPR_HEADER_TIMEOUT"), ("idle_timeout", "EPR_IDLE_TIMEOUT"),
        ("max_connections_per_address", "EPR_MAX_CONNECTIONS_PER_ADDRESS"), ("max_header_size", "EPR_MAX_HEADER_SIZE"),
    ]

    /// `header_timeout` and `idle_timeout` (seconds), `max_connections_per_address` (0: no
    /// limit) and `max_header_size` (a size).
    static func applyConnections(_ values: [String: String], to configuration: inout ServerConfiguration) throws {
        for (key, path) in [("header_timeout", \ConnectionLimits.headerTimeout), ("idle_timeout", \ConnectionLimits.idleTimeout)] {
            guard let text = values[key] else { continue }
            guard let seconds = Double(text), seconds >= 0.1, seconds <= 86400 else {
                throw Invalid(description: "\(key) \(text) is not a number of seconds from 0.1 to 86400")
            }
            configuration.connections[keyPath: path] = .milliseconds(Int64(seconds * 1000))
        }
        if let text = values["max_connections_per_address"] {
            guard let count = Int(text), (0...1_000_000).contains(count) else {
                throw Invalid(description: "max_connections_per_address \(text) is not a number from 0 to 1000000 (0 turns the limit off)")
            }
            configuration.connections.perAddress = count
        }
        if let text = values["max_header_size"] {
            guard let bytes = parseSize(text), (1 << 10...1 << 20).contains(bytes) else {
                throw Invalid(description: "max_header_size \(text) is not a size from 1K to 1M")
            }
            configuration.connections.headerBytes = Int(bytes)
        }
    }
}
