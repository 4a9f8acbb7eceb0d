import Foundation
import NIOCore
import PackageFormat

/// Where package archives live, addressed by their SHA-256: the filesystem on one machine,
/// S3-compatible object storage when scaled out.
public protocol BlobStore: Sendable {
    /// A new file for spooling an upload into, inside the store's temporary area.
    func temporaryFile() throws -> URL

    /// Takes ownership of a completely written temporary file whose content has `digest`, and
    /// makes it durable under that digest. Storing a digest that exists is not an error.
    func store(_ file: URL, digest: SHA256Digest) async throws

    /// The size of a blob, or nil when it does not exist.
    func size(of digest: SHA256Digest) async throws -> Int64?

    /// Reads a blob (or a byte range of it) in chunks.
    func read(_ digest: SHA256Digest, range: ClosedRange<Int64>?) async throws -> AsyncThrowingStream<ByteBuffer, any Error>

    /// A local file holding the blob, when the store has one (lets the server use zero-copy file I/O).
    func localPath(of digest: SHA256Digest) -> String?

    func delete(_ digest: SHA256Digest) async throws
    func allDigests() async throws -> [SHA256Digest]

    /// Removes temporary files left by uploads that never finished (after a crash).
    func sweepTemporaryFiles() async throws -> Int
}
