import NIOConcurrencyHelpers
import Storage
import Synchronization

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

    private struct State {
        var entries: [String: Entry] = [:]
        /// Bumped by every invalidation, so a load that started before a write cannot store
        /// what it read after the write invalidated it.
        var generations: [String: UInt64] = [:]
    }

    private let state = NIOLockedValueBox(State())
    private let changes = Atomic<UInt64>(0)
    let ttl: Duration
    let capacity: Int

    init(ttl: Duration = .seconds(5), capacity: Int = 4096) {
        self.ttl = ttl
        self.capacity = capacity
    }

    func versions(_ canonical: String, load: () async throws -> [VersionRecord]) async throws -> [VersionRecord] {
        let now = ContinuousClock.now
        let (cached, generation) = state.withLockedValue { ($0.entries[canonical], $0.generations[canonical, default: 0]) }
        if let cached, now - cached.loaded < ttl { return cached.versions }
        let versions = try await load()
        // Unknown names are not cached: random look-ups must not push out real packages.
        guard !versions.isEmpty else { return versions }
        state.withLockedValue { state in
            guard state.generations[canonical, default: 0] == generation else { return }
            if state.entries.count >= capacity, state.entries[canonical] == nil,
               let oldest = state.entries.min(by: { $0.value.loaded < $1.value.loaded })?.key {
                state.entries[oldest] = nil
            }
            state.entries[canonical] = Entry(loaded: now, versions: versions)
        }
        return versions
    }

    /// Counts invalidations of any package: an answer built while this stayed the same saw
    /// no write made through this registry.
    var changeCount: UInt64 { changes.load(ordering: .acquiring) }

    func invalidate(_ canonical: String) {
        defer { changes.add(1, ordering: .releasing) }
        state.withLockedValue { state in
            state.entries[canonical] = nil
            state.generations[canonical, default: 0] &+= 1
        }
    }
}
