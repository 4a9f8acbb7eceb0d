import Testing
import PackageFormat

@Suite struct SemanticVersionTests {
    @Test(arguments: ["0.0.0", "1.2.3", "10.20.30", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-0.3.7", "1.0.0-x.7.z.92",
                      "1.0.0+20130313144700", "1.0.0-beta+exp.sha.5114f85", "1.0.0-x-y-z.--", "18446744073709551615.0.0"])
    func validVersionsRoundTrip(text: String) throws {
        #expect(try SemanticVersion(text).description == text)
    }

    @Test(arguments: ["", "1", "1.2", "1.2.3.4", "01.2.3", "1.02.3", "1.2.03", "1.2.3-", "1.2.3-01", "1.2.3+", "1.2.3-a..b",
                      "v1.2.3", "1.2.3 ", "-1.2.3", "1.2.3-a+b+c", "18446744073709551616.0.0", "1.2.3-é"])
    func invalidVersionsAreRefused(text: String) {
        #expect(throws: SemanticVersion.ParseError.self) { try SemanticVersion(text) }
    }

    /// The precedence example from the specification, shuffled, must sort back into order.
    @Test func precedenceFollowsTheSpecification() throws {
        let ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
                       "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0", "10.0.0"]
        var versions = try ordered.map { try SemanticVersion($0) }
        versions.reverse()
        versions.swapAt(0, 5)
        #expect(versions.sorted().map(\.description) == ordered)
    }

    @Test func hugeNumericIdentifiersCompareAsNumbers() throws {
        #expect(try SemanticVersion("1.0.0-99999999999999999999") < SemanticVersion("1.0.0-100000000000000000000"))
        #expect(try SemanticVersion("1.0.0-100000000000000000000") < SemanticVersion("1.0.0-a"))
    }

    @Test func buildMetadataDoesNotAffectEqualityOrPrecedence() throws {
        let a = try SemanticVersion("1.0.0+a"), b = try SemanticVersion("1.0.0+b")
        #expect(a == b)
        #expect(!(a < b) && !(b < a))
        #expect(Set([a, b]).count == 1)
        #expect(try SemanticVersion("1.0.0-rc.1").isPrerelease)
        #expect(try !SemanticVersion("1.0.0").isPrerelease)
    }

    @Test func reasonsNameTheProblem() {
        #expect(throws: SemanticVersion.ParseError(input: "1.02.3", reason: "\"02\" has a leading zero")) { try SemanticVersion("1.02.3") }
    }
}

@Suite struct PackageNameTests {
    @Test(arguments: ["a", "xdp-filter", "l3af_ratelimiting", "a1", String(repeating: "a", count: 64)])
    func validNames(text: String) throws {
        #expect(try PackageName(text).value == text)
    }

    @Test(arguments: ["", "1abc", "-abc", "_abc", "Abc", "abc.def", "abc def", "abc/def", "ä", String(repeating: "a", count: 65)])
    func invalidNames(text: String) {
        #expect(throws: PackageName.InvalidName.self) { try PackageName(text) }
    }

    @Test func caseAndSeparatorVariantsAreTheSameName() throws {
        #expect(try PackageName("xdp-filter") == PackageName("xdp_filter"))
        #expect(try PackageName("xdp-filter").canonical == PackageName.canonicalForm("XDP_Filter"))
        #expect(try PackageName("xdp-filter") != PackageName("xdpfilter"))
        #expect(try Set([PackageName("a-b"), PackageName("a_b")]).count == 1)
    }
}
