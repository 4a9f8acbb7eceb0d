import NIOConcurrencyHelpers
import Storage

/// The versions of each package as last read from the metadata store, so that downloads
/// resolve `latest` without a database round trip.
///
/// Writes made through the registry invalidate a package at once; entries also expire after
/// `ttl`, so writes by other servers sharing the same database show within that time.
final class VersionCache: Sendable {
    private struct Entry {
        var loaded: ContinuousClock.Instant
        var versions: [VersionRecord]
    }

    private let entries = NIOLockedValueBox<[String: Entry]>([:])
    let ttl: Duration
    let capacity: Int

    init(ttl: Duration = .seconds(5), capacity: Int = 4096) {
        self.ttl = ttl
        self.capacity = capacity
    }

    func versions(_ canonical: String, load: () async throws -> [VersionRecord]) async throws -> [VersionRecord] {
        let now = ContinuousClock.now
        if let entry = entries.withLockedValue({ $0[canonical] }), now - entry.loaded < ttl {
            return entry.versions
        }
        let versions = try await load()
        entries.withLockedValue { entries in
            if entries.count >= capacity, entries[canonical] == nil {
                // Make room by dropping the entry loaded longest ago.
                if let oldest = entries.min(by: { $0.value.loaded < $1.value.loaded })?.key { entries[oldest] = nil }
            }
            entries[canonical] = Entry(loaded: now, versions: versions)
        }
        return versions
    }

    func invalidate(_ canonical: String) {
        _ = entries.withLockedValue { $0.removeValue(forKey: canonical) }
    }
}
