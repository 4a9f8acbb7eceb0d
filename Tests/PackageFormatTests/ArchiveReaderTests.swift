import Foundation
import TestSupport
import Testing
@testable import PackageFormat

/// A corpus of hostile archives, generated here: each is refused with the right typed error.
@Suite struct ArchiveReaderTests {
    /// Reads every entry and its content; returns the entries or the refusal.
    func read(_ compressed: [UInt8], limits: ArchiveLimits = ArchiveLimits(), top: String? = nil) -> Result<[ArchiveEntry], ArchiveError> {
        do throws(ArchiveError) {
            let reader = try ArchiveReader(MemorySource(compressed), limits: limits, expectedTopLevel: top)
            var entries: [ArchiveEntry] = []
            while let entry = try reader.next() {
                entries.append(entry)
                _ = try reader.readAll(limit: 1 << 30)
            }
            return .success(entries)
        } catch {
            return .failure(error)
        }
    }

    func refusal(_ build: (inout TarBuilder) -> Void, limits: ArchiveLimits = ArchiveLimits(), top: String? = nil) throws -> ArchiveError? {
        var builder = TarBuilder()
        build(&builder)
        guard case let .failure(error) = read(try TarBuilder.gzip(builder.tar()), limits: limits, top: top) else { return nil }
        return error
    }

    @Test func wellFormedArchiveIsRead() throws {
        var builder = TarBuilder()
        builder.entry("pkg/", type: "5", mode: 0o755)
        builder.entry("./pkg/epr.toml", content: Array("x".utf8))
        builder.entry("pkg/bin/tool", content: [1, 2, 3], mode: 0o755)
        builder.entry("pkg/bin/alias", type: "2", link: "tool")
        builder.entry("pkg/bin/hard", type: "1", link: "pkg/bin/tool")
        guard case let .success(entries) = read(try TarBuilder.gzip(builder.tar()), top: "pkg") else {
            Issue.record("refused a well-formed archive")
            return
        }
        #expect(entries.map(\.path) == ["pkg", "pkg/epr.toml", "pkg/bin/tool", "pkg/bin/alias", "pkg/bin/hard"])
        #expect(entries.map(\.relativePath) == ["", "epr.toml", "bin/tool", "bin/alias", "bin/hard"])
        #expect(entries[2].isExecutable)
        #expect(entries[2].size == 3)
        #expect(entries[3].kind == .symlink)
    }

    @Test func longNamesThroughPax() throws {
        let long = "pkg/" + String(repeating: "directory/", count: 25) + "file"
        var builder = TarBuilder()
        builder.pax(["path": long])
        builder.entry("ignored", content: [1])
        let entries = try read(TarBuilder.gzip(builder.tar())).get()
        #expect(entries.map(\.path) == [long])
    }

    @Test func traversal() throws {
        #expect(try refusal { $0.entry("pkg/../../etc/passwd", content: [1]) } == .pathTraversal(entry: "pkg/../../etc/passwd"))
        #expect(try refusal { $0.entry("../outside", content: [1]) } == .pathTraversal(entry: "../outside"))
        #expect(try refusal { $0.pax(["path": "pkg/../x"]); $0.entry("pkg/x", content: [1]) } == .pathTraversal(entry: "pkg/../x"))
    }

    @Test func absolutePath() throws {
        #expect(try refusal { $0.entry("/etc/cron.d/evil", content: [1]) } == .absolutePath(entry: "/etc/cron.d/evil"))
    }

    @Test func entriesOutsideTheTopLevelDirectory() throws {
        #expect(try refusal { $0.entry("pkg/a", content: [1]); $0.entry("other/b", content: [1]) }
                == .outsideTopLevel(entry: "other/b", topLevel: "pkg"))
        #expect(try refusal { $0.entry("file-at-root", content: [1]) } == .outsideTopLevel(entry: "file-at-root", topLevel: "file-at-root"))
        #expect(try refusal({ $0.entry("wrong/a", content: [1]) }, top: "pkg") == .wrongTopLevel(entry: "wrong/a", expected: "pkg"))
    }

    @Test func linksThatEscape() throws {
        #expect(try refusal { $0.entry("pkg/evil", type: "2", link: "/etc/shadow") } == .linkEscapes(entry: "pkg/evil", target: "/etc/shadow"))
        #expect(try refusal { $0.entry("pkg/evil", type: "2", link: "../../etc") } == .linkEscapes(entry: "pkg/evil", target: "../../etc"))
        #expect(try refusal { $0.entry("pkg/a/evil", type: "2", link: "../..") } == .linkEscapes(entry: "pkg/a/evil", target: "../.."))
        #expect(try refusal { $0.entry("pkg/hard", type: "1", link: "etc/passwd") }?.code == "archive-link-escapes")
        #expect(try refusal { $0.entry("pkg/hard", type: "1", link: "pkg/missing") }?.code == "archive-link-escapes")
    }

    @Test func writingThroughALink() throws {
        #expect(try refusal {
            $0.entry("pkg/dir", type: "2", link: "sub")
            $0.entry("pkg/dir/file", content: [1])
        } == .throughLink(entry: "pkg/dir/file", link: "pkg/dir"))
    }

    @Test(arguments: [("3", "character device"), ("4", "block device"), ("6", "FIFO")] as [(Character, String)])
    func deviceFiles(type: Character, name: String) throws {
        #expect(try refusal { $0.entry("pkg/dev", type: type) } == .unsupportedType(entry: "pkg/dev", type: name))
    }

    @Test func duplicates() throws {
        #expect(try refusal { $0.entry("pkg/a", content: [1]); $0.entry("pkg/./a", content: [2]) }?.code == "archive-unsafe-path")
        #expect(try refusal { $0.entry("pkg/a", content: [1]); $0.entry("./pkg/a", content: [2]) } == .duplicateEntry(entry: "./pkg/a"))
        #expect(try refusal { $0.entry("pkg/a", content: [1]); $0.entry("pkg/a/b", content: [2]) }?.code == "archive-unsafe-path")
    }

    @Test func unsafeNames() throws {
        #expect(try refusal { $0.entry("pkg/a\\b", content: [1]) }?.code == "archive-unsafe-path")
        #expect(try refusal { $0.entry("pkg//a", content: [1]) }?.code == "archive-unsafe-path")
        #expect(try refusal { $0.entry("pkg/\u{1B}[2Jx", content: [1]) }?.code == "archive-unsafe-path")
    }

    @Test func tooManyEntries() throws {
        var limits = ArchiveLimits()
        limits.maxEntries = 100
        #expect(try refusal({ b in for i in 0..<101 { b.entry("pkg/f\(i)") } }, limits: limits) == .tooManyEntries(limit: 100))
        #expect(try refusal({ b in for i in 0..<100 { b.entry("pkg/f\(i)") } }, limits: limits) == nil)
    }

    @Test func entryAndArchiveSizeLimits() throws {
        var limits = ArchiveLimits()
        limits.maxEntrySize = 1000
        #expect(try refusal({ $0.entry("pkg/big", content: [UInt8](repeating: 7, count: 1001)) }, limits: limits)
                == .entryTooLarge(entry: "pkg/big", size: 1001, limit: 1000))
        var total = ArchiveLimits()
        total.maxExpandedSize = 64 * 1024
        #expect(try refusal({ b in for i in 0..<10 { b.entry("pkg/f\(i)", content: (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i) }) } },
                            limits: total) == .expandedSizeExceeded(limit: 64 * 1024))
    }

    @Test func gzipBomb() throws {
        // 64 MiB of zeros compresses about a thousand times.
        var builder = TarBuilder()
        builder.entry("pkg/zeros", size: 64 << 20)
        var data = builder.tar(ended: false)
        data += [UInt8](repeating: 0, count: 64 << 20)
        let compressed = try TarBuilder.gzip(data + [UInt8](repeating: 0, count: 1024))
        #expect(compressed.count < 1 << 20)
        guard case let .failure(error) = read(compressed) else {
            Issue.record("a gzip bomb was accepted")
            return
        }
        #expect(error == .compressionRatioExceeded(entry: "pkg/zeros", limit: 200))
    }

    @Test func truncatedAndCorruptStreams() throws {
        var builder = TarBuilder()
        builder.entry("pkg/a", content: (0..<5000).map { UInt8(truncatingIfNeeded: $0 * 7) })
        let good = try TarBuilder.gzip(builder.tar())
        #expect(read(good).map(\.count) == .success(1))
        #expect(read(Array(good.prefix(good.count - 9))).failureCode == "archive-truncated")
        #expect(read(Array(good.prefix(good.count / 2))).failureCode == "archive-truncated")
        var flipped = good
        flipped[good.count / 2] ^= 0x55
        #expect(["archive-corrupt-gzip", "archive-bad-header", "archive-truncated"].contains(read(flipped).failureCode))
        var crc = good
        crc[good.count - 6] ^= 0x01 // the CRC-32 in the gzip trailer
        #expect(read(crc).failureCode == "archive-corrupt-gzip")
        #expect(read(good + [1, 2, 3]).failureCode == "archive-trailing-data")
        #expect(read(good + [0, 0, 0]).map(\.count) == .success(1))
        #expect(read(Array("plain text, not gzip".utf8)).failureCode == "archive-not-gzip")
        #expect(read([]).failureCode == "archive-not-gzip")
        #expect(read(try TarBuilder.gzip(builder.tar(ended: false))).failureCode == "archive-truncated")
        #expect(read(try TarBuilder.gzip([])).failureCode == "archive-truncated")
        #expect(read(try TarBuilder.gzip([UInt8](repeating: 0, count: 1024))) == .failure(.empty))
    }

    @Test func badHeaders() throws {
        #expect(try refusal { $0.entry("pkg/a", content: [1], corruptChecksum: true) }?.code == "archive-bad-header")
        #expect(try refusal { $0.entry("pkg/dir", type: "5", content: [1, 2]) }?.code == "archive-bad-header")
        #expect(try refusal { $0.entry("pkg/odd", type: "V") }?.code == "archive-unsupported-entry-type")
        #expect(try refusal { $0.pax(["path": "pkg/a", "size": "lots"]); $0.entry("pkg/a") }?.code == "archive-bad-header")
    }

    @Test func sizeLargerThanTheData() throws {
        var builder = TarBuilder()
        builder.entry("pkg/a", content: [1, 2, 3], size: 1 << 20)
        #expect(read(try TarBuilder.gzip(builder.tar())).failureCode == "archive-truncated")
    }

    @Test func errorsNameTheirEntry() {
        #expect(ArchiveError.linkEscapes(entry: "pkg/x", target: "/").entry == "pkg/x")
        #expect(ArchiveError.linkEscapes(entry: "pkg/x", target: "/").description.contains("pkg/x"))
        #expect(ArchiveError.tooManyEntries(limit: 3).entry == nil)
    }
}

extension Result where Failure == ArchiveError {
    var failureCode: String? {
        if case let .failure(error) = self { return error.code }
        return nil
    }
}

/// Cases found by review and fuzzing.
@Suite struct ArchiveReaderRegressionTests {
    let reading = ArchiveReaderTests()

    func refusal(_ build: (inout TarBuilder) -> Void) throws -> ArchiveError? {
        try reading.refusal(build)
    }

    /// Each link looks harmless on its own, but through the first the second climbs out.
    @Test func chainedLinksThatEscape() throws {
        #expect(try refusal {
            $0.entry("pkg/q/", type: "5")
            $0.entry("pkg/a/b/c/d/y", type: "2", link: "../../../../q")
            $0.entry("pkg/a/b/c/d/x", type: "2", link: "y/../../../../etc/passwd")
        }?.code == "archive-link-escapes")
        // The same links in the other order.
        #expect(try refusal {
            $0.entry("pkg/a/b/c/d/x", type: "2", link: "y/../../../../etc/passwd")
            $0.entry("pkg/a/b/c/d/y", type: "2", link: "../../../../q")
        }?.code == "archive-link-escapes")
        #expect(try refusal { $0.entry("pkg/loop", type: "2", link: "loop/x") }?.code == "archive-link-escapes")
        #expect(try refusal {
            $0.entry("pkg/bin/tool", content: [1])
            $0.entry("pkg/current", type: "2", link: "bin")
            $0.entry("pkg/run", type: "2", link: "current/tool")
        } == nil)
    }

    @Test func implicitDirectoriesCannotBecomeFiles() throws {
        #expect(try refusal { $0.entry("pkg/a/x", content: [1]); $0.entry("pkg/a", content: [2]) } == .duplicateEntry(entry: "pkg/a"))
        #expect(try refusal { $0.entry("pkg/a/x", content: [1]); $0.entry("pkg/a/", type: "5") } == nil)
    }

    @Test func paxLengthsThatWouldOverflow() throws {
        var builder = TarBuilder()
        builder.entry("PaxHeader", type: "x", content: Array("6 a=b\n9223372036854775807 p=x\n".utf8))
        builder.entry("pkg/a", content: [1])
        guard case let .failure(error) = reading.read(try TarBuilder.gzip(builder.tar())) else {
            Issue.record("accepted a malformed pax header")
            return
        }
        #expect(error.code == "archive-bad-header")
    }

    @Test func nonASCIINamesNeedingPaxAreWritten() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let name = "a" + String(repeating: "é", count: 60)
        let file = directory.appendingPathComponent("content")
        try Data("x".utf8).write(to: file)
        let output = directory.appendingPathComponent("t.tar.gz").path
        _ = try ArchiveWriter(topLevel: "top", modificationTime: 0).write([.init(path: name, source: file.path, executable: false)], to: output)
        let reader = try ArchiveReader(FileSource(path: output), expectedTopLevel: "top")
        var paths: [String] = []
        while let entry = try reader.next() { paths.append(entry.relativePath) }
        #expect(paths.contains(name))
    }

    @Test func globsStayFastOnHostilePatterns() {
        let name = String(repeating: "a", count: 60)
        #expect(!RelativePath.matches(name, pattern: "*a*a*a*a*a*a*a*a*a*a*b"))
        #expect(!RelativePath.matches(Array(repeating: "d", count: 30).joined(separator: "/"),
                                      pattern: Array(repeating: "**/d", count: 20).joined(separator: "/") + "/x"))
        #expect(RelativePath.matches("src/a/b/c.c", pattern: "src/**/*.c"))
        #expect(RelativePath.matches("src/c.c", pattern: "src/**/*.c"))
        #expect(RelativePath.matches("build.sh", pattern: "b?ild.*"))
        #expect(!RelativePath.matches("src/c.h", pattern: "src/*.c"))
        #expect(!RelativePath.matches("src/x/c.c", pattern: "src/*.c"))
    }

    /// Links whose targets name the previous link four times: resolving each use again would
    /// cost 4^depth steps (a 257-byte archive once took 32 s at six levels). Each link is
    /// resolved once, and, as in the kernel, every link followed counts towards the 40 a path
    /// may follow, so such a chain is refused at its third level after a few hundred steps.
    func chain(depth: Int, build: inout TarBuilder) {
        build.entry("pkg/d/", type: "5", mode: 0o755)
        build.entry("pkg/l0", type: "2", link: "d")
        for level in 1...depth {
            let previous = "l\(level - 1)"
            build.entry("pkg/l\(level)", type: "2", link: Array(repeating: previous, count: 4).joined(separator: "/../"))
        }
    }

    @Test func chainsOfLinksCostLinearWork() throws {
        #expect(try refusal { builder in
            chain(depth: 12, build: &builder)
        }?.code == "archive-link-escapes")

        // Two levels follow 21 links: within the kernel's 40, so the archive is read.
        var builder = TarBuilder()
        chain(depth: 2, build: &builder)
        let entries = try ArchiveReaderTests().read(TarBuilder.gzip(builder.tar())).get()
        #expect(entries.count == 4)

        var links: [String: String] = ["pkg/l0": "d"]
        for level in 1...12 { links["pkg/l\(level)"] = Array(repeating: "l\(level - 1)", count: 4).joined(separator: "/../") }
        var resolution = LinkResolution(symlinks: links, topLevel: "pkg", budget: 100_000)
        #expect(resolution.resolve(link: "pkg/l2")?.parts == ["pkg", "d"])
        #expect(resolution.resolve(link: "pkg/l2")?.hops == 21)
        #expect(resolution.resolve(link: "pkg/l12") == nil)
        // Linear: every link walks its own seven components once, each step costing one and
        // the bytes of the path it looks up (at most seven here).
        #expect(100_000 - resolution.budget < 13 * 7 * 8)
    }

    /// Each step is charged the bytes of the path it looks up: a target of two thousand
    /// components under a path of nearly 4 KiB would cost 8 MB of hashing, and is refused once
    /// the budget the archive reader gives (proportional to the links' text) is spent.
    @Test func longPathsAreChargedByTheirBytes() {
        let deep = "pkg/" + (0..<39).map { _ in String(repeating: "d", count: 100) }.joined(separator: "/")
        let target = Array(repeating: "x/..", count: 2000).joined(separator: "/")
        let budget = 1 << 16 + 64 * (deep.utf8.count + 2 + target.utf8.count)
        var resolution = LinkResolution(symlinks: [deep + "/l": target], topLevel: "pkg", budget: budget)
        #expect(resolution.resolve(link: deep + "/l") == nil)
        #expect(resolution.budget < 0 && resolution.budget > -8192, "stopped as soon as the budget ran out")
        var shallow = LinkResolution(symlinks: ["pkg/l": target], topLevel: "pkg", budget: 1 << 16 + 64 * (5 + target.utf8.count))
        #expect(shallow.resolve(link: "pkg/l")?.parts == ["pkg"], "the same target from a short path is affordable")
        var wide = LinkResolution(symlinks: ["pkg/l": String(repeating: "c", count: 256)], topLevel: "pkg", budget: 1 << 20)
        #expect(wide.resolve(link: "pkg/l") == nil, "a component longer than 255 bytes")
    }

    @Test func loopsLongChainsAndSpentBudgetsResolveToNothing() {
        var loop = LinkResolution(symlinks: ["pkg/a": "b", "pkg/b": "a"], topLevel: "pkg", budget: 1000)
        #expect(loop.resolve(link: "pkg/a") == nil)
        var long: [String: String] = ["pkg/l0": "."]
        for level in 1...41 { long["pkg/l\(level)"] = "l\(level - 1)" }
        var chain = LinkResolution(symlinks: long, topLevel: "pkg", budget: 100_000)
        #expect(chain.resolve(link: "pkg/l38") != nil)
        #expect(chain.resolve(link: "pkg/l41") == nil)
        var poor = LinkResolution(symlinks: ["pkg/a": "x/y/z/w"], topLevel: "pkg", budget: 3)
        #expect(poor.resolve(link: "pkg/a") == nil)
    }
}
