import Foundation
import PackageFormat
import TestSupport
import Testing
@testable import Checks

/// The build sandbox holds: a build that reaches for the network, writes outside its directory
/// or runs past its time limit is stopped, and the failure says so.
@Suite(.serialized) struct BuildSandboxTests {
    /// xdp-proto-counter from its sources, with `script` as its test, in a new directory.
    static func package(testScript script: String, in scratch: URL) throws -> URL {
        let directory = scratch.appendingPathComponent("pkg-\(UUID().uuidString)")
        _ = try PackageBuildTests.sourcesOnly("xdp-proto-counter", at: directory)
        let manifest = directory.appendingPathComponent("epr.toml")
        var text = try String(contentsOf: manifest, encoding: .utf8)
        text = text.replacingOccurrences(of: #"sources = ["src/*.bpf.c", "build.sh"]"#, with: #"sources = ["src/*.bpf.c", "build.sh", "check.sh"]"#)
        text = text.replacingOccurrences(of: "[build]\n", with: "[build]\ntest = \"check.sh\"\n")
        try text.write(to: manifest, atomically: true, encoding: .utf8)
        let check = directory.appendingPathComponent("check.sh")
        try ("#!/bin/bash\nset -e\n" + script + "\n").write(to: check, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: check.path)
        return directory
    }

    static func build(_ directory: URL, sandboxed: Bool, timeout: Duration = .seconds(60)) throws -> PackageBuild.Failure? {
        let sandbox = try #require(BuildSandbox(), "bubblewrap (bwrap) is not installed")
        var options = PackageBuild.Options(environment: BuildSandbox.environment(from: ProcessInfo.processInfo.environment))
        options.stepTimeout = timeout
        if sandboxed { options.wrapper = { sandbox.wrapper(directory: $0) } }
        do {
            _ = try PackageBuild(options: options).run(directory: directory)
            return nil
        } catch let failure as PackageBuild.Failure {
            return failure
        }
    }

    /// A listening socket on the host's loopback, and its port.
    static func listener() throws -> (Int32, Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        try #require(bound == 0 && listen(fd, 8) == 0)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    @Test func theNetworkIsOutOfReach() throws {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let (fd, port) = try Self.listener()
        defer { close(fd) }
        let script = "exec 3<>/dev/tcp/127.0.0.1/\(port)\necho reached the network"
        // Outside the sandbox the same script reaches the listener: the sandbox is what stops it.
        #expect(try Self.build(try Self.package(testScript: script, in: scratch), sandboxed: false) == nil)
        let failure = try #require(try Self.build(try Self.package(testScript: script, in: scratch), sandboxed: true))
        #expect(failure.check == "build.failed")
        // The sandbox has a network of its own, with nothing on it: the host's listener is not there.
        #expect(failure.message.contains("./check.sh") && (failure.message.contains("refused") || failure.message.contains("unreachable")),
                "\(failure.message)")
        #expect(!PackageBuild.log(failure.steps).contains("reached the network"))
    }

    @Test func nothingOutsideItsDirectoryIsWritten() throws {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        // Beside the package, on the host's /tmp: the sandbox's /tmp is its own, so the host never sees it.
        let beside = scratch.appendingPathComponent("escaped-\(UUID().uuidString)")
        _ = try Self.build(try Self.package(testScript: "echo escaped > \(beside.path)", in: scratch), sandboxed: true)
        #expect(!FileManager.default.fileExists(atPath: beside.path))
        // Anywhere else the file systems are read-only.
        for target in ["/usr/local/epr-sandbox-\(UUID().uuidString)", "/var/tmp/epr-sandbox-\(UUID().uuidString)", "/etc/epr-sandbox-\(UUID().uuidString)"] {
            let failure = try #require(try Self.build(try Self.package(testScript: "echo escaped > \(target)", in: scratch), sandboxed: true))
            #expect(failure.message.contains("Read-only file system") || failure.message.contains("No such file or directory"), "\(failure.message)")
            #expect(!FileManager.default.fileExists(atPath: target))
        }
        // Its own directory and /tmp are writable.
        #expect(try Self.build(try Self.package(testScript: "echo ok > own.txt; echo ok > /tmp/scratch.txt", in: scratch), sandboxed: true) == nil)
    }

    @Test func aBuildPastItsTimeLimitIsStopped() throws {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let started = ContinuousClock.now
        let failure = try #require(try Self.build(try Self.package(testScript: "sleep 60", in: scratch), sandboxed: true, timeout: .seconds(3)))
        #expect(failure.check == "build.timeout")
        #expect(failure.message.contains("time limit"), "\(failure.message)")
        #expect(ContinuousClock.now - started < .seconds(30), "stopped, not waited for")
    }
}
