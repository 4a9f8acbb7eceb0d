import Foundation
import TestSupport
import Testing
@testable import BPFObject

/// Every input the fuzzer ever crashed on (Fuzz/regressions/object) is now inspected or
/// refused with a typed error.
@Suite struct ObjectFuzzRegressionTests {
    static let inputs: [String] = {
        let directory = Fixtures.root.appendingPathComponent("Fuzz/regressions/object").path
        return ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
    }()

    @Test func regressionInputsExist() {
        #expect(!Self.inputs.isEmpty)
    }

    @Test(arguments: inputs)
    func inputIsHandled(name: String) throws {
        let bytes = Array(try Data(contentsOf: Fixtures.root.appendingPathComponent("Fuzz/regressions/object/\(name)")))
        do {
            _ = try BPFObjectInspector().inspect(bytes)
        } catch {
            #expect(!error.code.isEmpty)
        }
    }

    /// The first crash: a legacy map symbol placed beyond the end of the `maps` section.
    @Test func legacyMapSymbolBeyondItsSection() throws {
        let bytes = Array(try Data(contentsOf: Fixtures.root.appendingPathComponent("Fuzz/regressions/object/legacy-map-symbol-beyond-section")))
        #expect(throws: BPFObjectError.self) { try BPFObjectInspector().inspect(bytes) }
    }
}
