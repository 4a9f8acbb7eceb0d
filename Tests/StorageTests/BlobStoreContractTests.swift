import Foundation
import NIOCore
import PackageFormat
import Storage
import TestSupport
import Testing

/// The contract every blob store keeps. Each test runs over every implementation.
@Suite struct BlobStoreContractTests {
    enum Kind: String, CaseIterable, CustomTestStringConvertible {
        case filesystem
        var testDescription: String { rawValue }
    }

    static func makeStore(_ kind: Kind) throws -> (any BlobStore, () -> Void) {
        switch kind {
        case .filesystem:
            let directory = try Fixtures.temporaryDirectory()
            return (try FileBlobStore(root: directory), { try? FileManager.default.removeItem(at: directory) })
        }
    }

    /// Writes `bytes` into a new temporary file of the store.
    static func spool(_ bytes: [UInt8], in store: any BlobStore) throws -> URL {
        let file = try store.temporaryFile()
        try Data(bytes).write(to: file)
        return file
    }

    static func collect(_ stream: AsyncThrowingStream<ByteBuffer, any Error>) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        for try await buffer in stream { bytes += buffer.readableBytesView }
        return bytes
    }

    @Test(arguments: Kind.allCases)
    func storeReadAndRanges(kind: Kind) async throws {
        let (store, cleanup) = try Self.makeStore(kind)
        defer { cleanup() }
        let content = (0..<700_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let digest = SHA256Digest(of: content)
        let file = try Self.spool(content, in: store)
        try await store.store(file, digest: digest)
        #expect(!FileManager.default.fileExists(atPath: file.path), "the store takes the temporary file")
        #expect(try await store.size(of: digest) == Int64(content.count))
        #expect(try await Self.collect(store.read(digest, range: nil)) == content)
        #expect(try await Self.collect(store.read(digest, range: 10...19)) == Array(content[10...19]))
        #expect(try await Self.collect(store.read(digest, range: 699_990...800_000)) == Array(content[699_990...]))
        #expect(try await store.allDigests() == [digest])
    }

    @Test(arguments: Kind.allCases)
    func storingTwiceKeepsOneBlob(kind: Kind) async throws {
        let (store, cleanup) = try Self.makeStore(kind)
        defer { cleanup() }
        let content = Array("same bytes".utf8)
        let digest = SHA256Digest(of: content)
        try await store.store(try Self.spool(content, in: store), digest: digest)
        try await store.store(try Self.spool(content, in: store), digest: digest)
        #expect(try await store.allDigests() == [digest])
        #expect(try await store.sweepTemporaryFiles() == 0, "no temporary file is left behind")
        try await store.delete(digest)
        #expect(try await store.size(of: digest) == nil)
        #expect(try await store.allDigests().isEmpty)
    }

    @Test(arguments: Kind.allCases)
    func sweepRemovesAbandonedUploads(kind: Kind) async throws {
        let (store, cleanup) = try Self.makeStore(kind)
        defer { cleanup() }
        _ = try Self.spool([1, 2, 3], in: store)
        _ = try Self.spool([4, 5, 6], in: store)
        #expect(try await store.sweepTemporaryFiles() == 2)
        #expect(try await store.sweepTemporaryFiles() == 0)
    }

    @Test(arguments: Kind.allCases)
    func missingBlobs(kind: Kind) async throws {
        let (store, cleanup) = try Self.makeStore(kind)
        defer { cleanup() }
        let digest = SHA256Digest(of: [9, 9, 9])
        #expect(try await store.size(of: digest) == nil)
        await #expect(throws: (any Error).self) { try await Self.collect(store.read(digest, range: nil)) }
    }
}
