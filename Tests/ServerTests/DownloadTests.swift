import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import PackageFormat
import TestSupport
import Testing

/// Downloads as L3AFD, people and caches make them.
@Suite struct DownloadTests {
    @Test func l3afdPathsResolvePlatformsAndLatest() async throws {
        let registry = try await TestRegistry.make()
        let filter = try registry.archive("xdp-port-filter")          // platforms bookworm, jammy, noble
        let tracker = try registry.archive("exec-tracker")            // platforms any (CO-RE)
        try await registry.run { client in
            #expect(try await client.publish(filter).status == .created)
            #expect(try await client.publish(tracker).status == .created)

            let jammy = try await client.get("/xdp-port-filter/latest/jammy/xdp_port_filter.tar.gz")
            #expect(jammy.status == .ok)
            #expect(jammy.body == filter)
            #expect(jammy.headers[.contentType] == "application/gzip")

            let focal = try await client.get("/xdp-port-filter/latest/focal/xdp_port_filter.tar.gz")
            #expect(focal.status == .notFound)
            #expect(focal.problemCode == "no-published-version")
            #expect(try await client.get("/xdp-port-filter/1.0.0/focal/xdp_port_filter.tar.gz").problemCode == "no-build-for-platform")

            // A CO-RE "any" build serves every Linux codename, but not Windows.
            for codename in ["focal", "bookworm", "noble"] {
                #expect(try await client.get("/exec-tracker/latest/\(codename)/exec_tracker.tar.gz").body == tracker)
            }
            #expect(try await client.get("/exec-tracker/latest/Windows/exec_tracker.tar.gz").status == .notFound)

            let wrongArtifact = try await client.get("/exec-tracker/latest/jammy/other.tar.gz")
            #expect(wrongArtifact.status == .notFound)
            #expect(wrongArtifact.problemCode == "artifact-mismatch")
            // Names are looked up in canonical form, as published.
            #expect(try await client.get("/exec_tracker/1.0.0/jammy/exec_tracker.tar.gz").status == .ok)
        }
    }

    @Test func yankedVersionsDownloadByExactVersionOnly() async throws {
        let registry = try await TestRegistry.make()
        let versions = ["1.0.0", "1.1.0", "2.0.0-rc.1", "1.10.0"]
        let archives = try versions.map { try registry.archive("exec-tracker", version: $0) }
        try await registry.run { client in
            for archive in archives { #expect(try await client.publish(archive).status == .created) }
            struct Package: Decodable { var latest: String?; var versions: [VersionBody] }
            var package = try await client.get("/api/v1/packages/exec-tracker").json(Package.self)
            #expect(package.versions.map(\.version) == ["2.0.0-rc.1", "1.10.0", "1.1.0", "1.0.0"])
            #expect(package.latest == "1.10.0", "latest skips pre-releases")

            let headers: HTTPFields = [.authorization: "Bearer \(TestRegistry.token)", .contentType: "application/json"]
            let yank = try await client.execute(uri: "/api/v1/packages/exec-tracker/versions/1.10.0/yank", method: .put, headers: headers,
                                                body: ByteBuffer(string: #"{"reason":"leaks memory"}"#))
            #expect(yank.status == .ok)
            #expect(try yank.json(VersionBody.self).yanked)
            let latest = try await client.get("/exec-tracker/latest/jammy/exec_tracker.tar.gz")
            #expect(latest.body == archives[1], "latest now resolves to 1.1.0")
            #expect(try await client.get("/exec-tracker/1.10.0/jammy/exec_tracker.tar.gz").body == archives[3])

            let anonymous = try await client.execute(uri: "/api/v1/packages/exec-tracker/versions/1.1.0/yank", method: .put)
            #expect(anonymous.status == .unauthorized)
            let yankLatest = try await client.execute(uri: "/api/v1/packages/exec-tracker/versions/latest/yank", method: .put, headers: headers)
            #expect(yankLatest.problemCode == "invalid-version", "yanking needs an exact version")

            let unyank = try await client.execute(uri: "/api/v1/packages/exec-tracker/versions/1.10.0/yank", method: .delete, headers: headers)
            #expect(unyank.status == .ok)
            package = try await client.get("/api/v1/packages/exec-tracker").json(Package.self)
            #expect(package.latest == "1.10.0")

            let deprecate = try await client.execute(uri: "/api/v1/packages/exec-tracker/versions/1.0.0/deprecation", method: .put,
                                                     headers: headers, body: ByteBuffer(string: #"{"message":"use 1.10"}"#))
            #expect(try deprecate.json(VersionBody.self).deprecated == "use 1.10")
            let badDeprecation = try await client.execute(uri: "/api/v1/packages/exec-tracker/versions/1.0.0/deprecation", method: .put,
                                                          headers: headers, body: ByteBuffer(string: "not json"))
            #expect(badDeprecation.problemCode == "invalid-body")
        }
    }

    @Test func downloadsHaveDigestsRangesAndCacheHeaders() async throws {
        let registry = try await TestRegistry.make()
        let archive = try registry.archive("exec-tracker")
        let digest = SHA256Digest(of: archive.readableBytesView)
        let bytes = Array(archive.readableBytesView)
        try await registry.run { client in
            #expect(try await client.publish(archive).status == .created)
            let exact = "/exec-tracker/1.0.0/jammy/exec_tracker.tar.gz"
            let full = try await client.get(exact)
            #expect(full.headers[.contentLength] == String(bytes.count))
            #expect(full.headers[.eTag] == "\"\(digest)\"")
            #expect(full.headers[.cacheControl] == "public, max-age=31536000, immutable")
            #expect(full.headers[HTTPField.Name("Digest")!] == "sha-256=" + Data(Self.raw(digest)).base64EncodedString())
            #expect(try await client.get("/exec-tracker/latest/jammy/exec_tracker.tar.gz").headers[.cacheControl] == "public, max-age=60")

            let notModified = try await client.get(exact, headers: [.ifNoneMatch: "\"\(digest)\""])
            #expect(notModified.status == .notModified)
            #expect(notModified.body.readableBytes == 0)
            #expect(try await client.get(exact, headers: [.ifNoneMatch: "\"sha256:0000\""]).status == .ok)

            let head = try await client.execute(uri: exact, method: .head)
            #expect(head.status == .ok)
            #expect(head.headers[.contentLength] == String(bytes.count))
            #expect(head.body.readableBytes == 0)

            let first = try await client.get(exact, headers: [.range: "bytes=0-9"])
            #expect(first.status == .partialContent)
            #expect(Array(first.body.readableBytesView) == Array(bytes[0...9]))
            #expect(first.headers[.contentRange] == "bytes 0-9/\(bytes.count)")
            let suffix = try await client.get(exact, headers: [.range: "bytes=-5"])
            #expect(Array(suffix.body.readableBytesView) == Array(bytes.suffix(5)))
            let open = try await client.get(exact, headers: [.range: "bytes=100-"])
            #expect(Array(open.body.readableBytesView) == Array(bytes[100...]))
            #expect(try await client.get(exact, headers: [.range: "bytes=-0"]).status == .rangeNotSatisfiable)
            #expect(try await client.get(exact, headers: [.range: "bytes=0-0"]).body.readableBytes == 1)
            let weakIfRange = try await client.get(exact, headers: [.range: "bytes=0-9", .ifRange: "W/\"\(digest)\""])
            #expect(weakIfRange.status == .ok, "If-Range with a weak tag sends the whole body")
            let outside = try await client.get(exact, headers: [.range: "bytes=\(bytes.count + 10)-"])
            #expect(outside.status == .rangeNotSatisfiable)
            #expect(outside.headers[.contentRange] == "bytes */\(bytes.count)")
            #expect(outside.headers[.cacheControl] == nil, "a refused range is not cached")
            #expect(try await client.get(exact, headers: [.range: "bytes=0-1,5-6"]).status == .ok, "several ranges get the whole body")

            let byDigest = try await client.get("/api/v1/blobs/\(digest)")
            #expect(byDigest.body == archive)
            #expect(try await client.get("/api/v1/blobs/sha256:" + String(repeating: "0", count: 64)).problemCode == "blob-not-found")
            #expect(try await client.get("/api/v1/blobs/not-a-digest").problemCode == "invalid-digest")
            #expect(try await client.get("/api/v1/packages/exec-tracker/versions/1.0.0/download").body == archive)
        }
    }

    static func raw(_ digest: SHA256Digest) -> [UInt8] {
        stride(from: 0, to: digest.hex.count, by: 2).map { offset in
            let start = digest.hex.index(digest.hex.startIndex, offsetBy: offset)
            return UInt8(digest.hex[start..<digest.hex.index(start, offsetBy: 2)], radix: 16)!
        }
    }

    @Test(arguments: [
        ("/../etc/passwd/x", "invalid-name"), ("/../../etc/passwd/x/y", "not-found"), ("/%2e%2e/1.0.0/jammy/x.tar.gz", "invalid-name"),
        ("/a%2Fb/1.0.0/jammy/x.tar.gz", "invalid-name"), ("/Bad!/1.0.0/jammy/x.tar.gz", "invalid-name"),
        ("/xdp/1.0/jammy/x.tar.gz", "invalid-version"), ("/xdp/latest/Jammy!/x.tar.gz", "invalid-platform"),
        ("/api/v1/packages/xdp/versions/01.0.0", "invalid-version"), ("/api/v1/packages/" + String(repeating: "a", count: 65), "invalid-name"),
        ("/xdp/1.0.0/jammy/x.tar.gz", "package-not-found"), ("/api/v1/nothing-here", "not-found"),
    ] as [(String, String)])
    func badPathsGetProblemDocuments(path: String, code: String) async throws {
        let registry = try await TestRegistry.make()
        try await registry.run { client in
            let response = try await client.get(path)
            #expect((400..<500).contains(response.status.code))
            #expect(response.headers[.contentType] == "application/problem+json")
            #expect(response.problemCode == code)
        }
    }
}
