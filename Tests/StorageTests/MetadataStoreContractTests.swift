import Foundation
import Logging
import PackageFormat
import Storage
import TestSupport
import Testing

/// The contract every metadata store keeps. Each test runs over every implementation.
@Suite struct MetadataStoreContractTests {
    enum Kind: String, CaseIterable, CustomTestStringConvertible {
        case sqlite
        var testDescription: String { rawValue }
    }

    /// A fresh, migrated store of the given kind, and a clean-up.
    static func makeStore(_ kind: Kind) async throws -> (any MetadataStore, @Sendable () async -> Void) {
        switch kind {
        case .sqlite:
            let directory = try Fixtures.temporaryDirectory()
            let store = try await SQLiteMetadataStore.open(path: directory.appendingPathComponent("epr.sqlite").path,
                                                          logger: Logger(label: "test"))
            try await store.migrate()
            try await store.migrate() // migrations are idempotent
            return (store, {
                try? await store.close()
                try? FileManager.default.removeItem(at: directory)
            })
        }
    }

    static func record(_ version: String, package: String = "xdp-filter", digest: String? = nil, platforms: [String] = ["any"]) -> VersionRecord {
        VersionRecord(package: package, version: version, artifact: "\(package).tar.gz", platforms: platforms,
                      digest: SHA256Digest(hex: digest ?? String(repeating: "a", count: 63) + String(version.count % 10)),
                      size: 100, manifest: Data("{}".utf8), report: Data("{}".utf8), publisher: "admin",
                      publishedAt: Date(timeIntervalSince1970: 1_700_000_000))
    }

    /// Counts how often the blob commit runs.
    final class Counter: @unchecked Sendable { // mutated only under the store's write lock
        var value = 0
    }

    @Test(arguments: Kind.allCases)
    func insertAndRead(kind: Kind) async throws {
        let (store, cleanup) = try await Self.makeStore(kind)
        defer { Task { await cleanup() } }
        let commits = Counter()
        try await store.insertVersion(Self.record("1.0.0"), packageName: "xdp-filter", canonical: "xdp-filter",
                                      description: "Filters.", ownership: .anyone) { commits.value += 1 }
        try await store.insertVersion(Self.record("1.1.0"), packageName: "xdp-filter", canonical: "xdp-filter",
                                      description: "Filters more.", ownership: .anyone) { commits.value += 1 }
        #expect(commits.value == 2)
        let package = try #require(try await store.package(canonical: "xdp-filter"))
        #expect(package.name == "xdp-filter")
        #expect(package.description == "Filters more.")
        let versions = try await store.versions(canonical: "xdp-filter")
        #expect(Set(versions.map(\.version)) == ["1.0.0", "1.1.0"])
        let one = try #require(try await store.version(canonical: "xdp-filter", version: "1.0.0"))
        #expect(one == Self.record("1.0.0"))
        #expect(try await store.version(canonical: "xdp-filter", version: "2.0.0") == nil)
        #expect(try await store.package(canonical: "nothing") == nil)
    }

    @Test(arguments: Kind.allCases)
    func versionsAreImmutable(kind: Kind) async throws {
        let (store, cleanup) = try await Self.makeStore(kind)
        defer { Task { await cleanup() } }
        let commits = Counter()
        try await store.insertVersion(Self.record("1.0.0"), packageName: "xdp-filter", canonical: "xdp-filter", description: "", ownership: .anyone) {
            commits.value += 1
        }
        // The same version again, and the same version with other build metadata.
        for version in ["1.0.0", "1.0.0+rebuild"] {
            await #expect(throws: MetadataStoreError.versionExists(package: "xdp-filter", version: version)) {
                try await store.insertVersion(Self.record(version), packageName: "xdp-filter", canonical: "xdp-filter", description: "", ownership: .anyone) {
                    commits.value += 1
                }
            }
        }
        #expect(commits.value == 1, "no blob is committed for a refused version")
        #expect(try await store.versions(canonical: "xdp-filter").count == 1)
    }

    @Test(arguments: Kind.allCases)
    func failedBlobCommitLeavesNothing(kind: Kind) async throws {
        let (store, cleanup) = try await Self.makeStore(kind)
        defer { Task { await cleanup() } }
        struct Failure: Error {}
        await #expect(throws: Failure.self) {
            try await store.insertVersion(Self.record("1.0.0"), packageName: "xdp-filter", canonical: "xdp-filter", description: "", ownership: .anyone) {
                throw Failure()
            }
        }
        #expect(try await store.package(canonical: "xdp-filter") == nil)
        #expect(try await store.versions(canonical: "xdp-filter").isEmpty)
    }

    @Test(arguments: Kind.allCases)
    func concurrentInsertsOfOneVersion(kind: Kind) async throws {
        let (store, cleanup) = try await Self.makeStore(kind)
        defer { Task { await cleanup() } }
        let outcomes = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<50 {
                group.addTask {
                    do {
                        try await store.insertVersion(Self.record("3.0.0"), packageName: "xdp-filter", canonical: "xdp-filter",
                                                      description: "", ownership: .anyone) {}
                        return true
                    } catch MetadataStoreError.versionExists { return false }
                }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 }.count == 1)
    }

    @Test(arguments: Kind.allCases)
    func yankAndDeprecate(kind: Kind) async throws {
        let (store, cleanup) = try await Self.makeStore(kind)
        defer { Task { await cleanup() } }
        try await store.insertVersion(Self.record("1.0.0"), packageName: "xdp-filter", canonical: "xdp-filter", description: "", ownership: .anyone) {}
        try await store.setYanked(canonical: "xdp-filter", version: "1.0.0", yanked: true, reason: "broken")
        try await store.setDeprecation(canonical: "xdp-filter", version: "1.0.0", message: "use 2.x")
        var record = try #require(try await store.version(canonical: "xdp-filter", version: "1.0.0"))
        #expect(record.yanked && record.yankReason == "broken" && record.deprecation == "use 2.x")
        try await store.setYanked(canonical: "xdp-filter", version: "1.0.0", yanked: false, reason: nil)
        try await store.setDeprecation(canonical: "xdp-filter", version: "1.0.0", message: nil)
        record = try #require(try await store.version(canonical: "xdp-filter", version: "1.0.0"))
        #expect(!record.yanked && record.yankReason == nil && record.deprecation == nil)
        await #expect(throws: MetadataStoreError.notFound) {
            try await store.setYanked(canonical: "xdp-filter", version: "9.9.9", yanked: true, reason: nil)
        }
    }

    @Test(arguments: Kind.allCases)
    func searchEscapesWildcardsAndPages(kind: Kind) async throws {
        let (store, cleanup) = try await Self.makeStore(kind)
        defer { Task { await cleanup() } }
        for (name, description) in [("alpha", "XDP 100% fast"), ("beta", "tc marker"), ("gamma", "xdp_counter helper"), ("delta", "tracing")] {
            try await store.insertVersion(Self.record("1.0.0", package: name, digest: SHA256Digest(of: Array(name.utf8)).hex),
                                          packageName: name, canonical: name, description: description, ownership: .anyone) {}
        }
        #expect(try await store.searchPackages(query: "xdp", offset: 0, limit: 10).items.map(\.name) == ["alpha", "gamma"])
        #expect(try await store.searchPackages(query: "%", offset: 0, limit: 10).items.map(\.name) == ["alpha"])
        #expect(try await store.searchPackages(query: "_", offset: 0, limit: 10).items.map(\.name) == ["gamma"])
        let page = try await store.searchPackages(query: "", offset: 1, limit: 2)
        #expect(page.total == 4)
        #expect(page.items.map(\.name) == ["beta", "delta"])
        #expect(Set(try await store.referencedDigests()).count == 4)
        #expect(try await store.isReferenced(SHA256Digest(of: Array("beta".utf8))))
        #expect(try await !store.isReferenced(SHA256Digest(of: Array("zeta".utf8))))
    }
}
