import Testing
@testable import PackageFormat

@Suite struct TOMLParserTests {
    @Test func parsesTheValueKinds() throws {
        let document = try TOMLParser.parse(#"""
        # a comment
        title = "epr" # trailing comment
        literal = 'C:\path'
        escaped = "tab\there \u00e9 \"q\""
        multi = """
        one \
          two"""
        raw = '''
        keep \n this'''
        int = 1_000
        hex = 0xff
        oct = 0o17
        bin = 0b101
        negative = -42
        float = 3.14e-2
        inf = -inf
        yes = true
        date = 2026-11-25
        moment = 1979-05-27T07:32:00Z
        list = [1, 2, 3,]
        nested = [[1], ["a"]]
        inline = { a = 1, b.c = "d" }
        "quoted key" = 1
        a.b.c = 2

        [table]
        x = 1

        [[items]]
        name = "first"
        [[items]]
        name = "second"
        [items.sub]
        y = true
        """#)
        #expect(document["title"] == .string("epr"))
        #expect(document["literal"] == .string(#"C:\path"#))
        #expect(document["escaped"] == .string("tab\there é \"q\""))
        #expect(document["multi"] == .string("one two"))
        #expect(document["raw"] == .string(#"keep \n this"#))
        #expect(document["int"] == .integer(1000))
        #expect(document["hex"] == .integer(255))
        #expect(document["oct"] == .integer(15))
        #expect(document["bin"] == .integer(5))
        #expect(document["negative"] == .integer(-42))
        #expect(document["float"] == .float(0.0314))
        #expect(document["inf"] == .float(-.infinity))
        #expect(document["yes"] == .boolean(true))
        #expect(document["date"] == .datetime("2026-11-25"))
        #expect(document["moment"] == .datetime("1979-05-27T07:32:00Z"))
        #expect(document["list"] == .array([.integer(1), .integer(2), .integer(3)]))
        #expect(document["nested"] == .array([.array([.integer(1)]), .array([.string("a")])]))
        guard case let .table(inline)? = document["inline"], case let .table(b)? = inline["b"] else {
            Issue.record("inline table missing")
            return
        }
        #expect(inline["a"] == .integer(1))
        #expect(b["c"] == .string("d"))
        #expect(document["quoted key"] == .integer(1))
        guard case let .array(items)? = document["items"], items.count == 2, case let .table(second) = items[1],
              case let .table(sub)? = second["sub"] else {
            Issue.record("array of tables missing")
            return
        }
        #expect(second["name"] == .string("second"))
        #expect(sub["y"] == .boolean(true))
        #expect(document.keys.first == "title")
    }

    @Test(arguments: [
        ("a = 1\na = 2", 2), ("[t]\n[t]", 2), ("a = 1\n[a]", 2), ("[t]\nx=1\n[[t]]", 3), ("a = ", 1), ("a = \"open", 1),
        ("a = 01", 1), ("a = 1__0", 1), ("a = _1", 1), ("a = 0x", 1), ("a = +0x1", 1), ("a = 1.", 1), ("a = .1", 1),
        ("a = [1 2]", 1), ("a = {b = 1,}", 1), ("a = {b = 1\n}", 1), ("a = \"\\q\"", 1), ("a = tru", 1), ("a = 1 b = 2", 1),
        ("a.b = 1\n[a.b]", 2), ("a = {b = 1}\n[a.c]", 2), ("a = {b = 1}\na.c = 2", 2), ("[a\nb]", 1), ("= 1", 1),
        ("a = \"x\u{01}\"", 1), ("a = 2026-13", 1), ("# \u{7F}", 1), ("a = \"\\uD800\"", 1),
        ("t = 07:32", 1), ("t = 1979-05-27T07:32Z", 1), ("t = 1979-13-45", 1), ("t = 25:99:99", 1),
        ("a = \"\\u+041\"", 1), ("a = \"\"\"x\ry\"\"\"", 1), ("a = '''x\ry'''", 1),
    ] as [(String, Int)])
    func invalidDocumentsAreRefusedWithTheirLine(text: String, line: Int) {
        do {
            _ = try TOMLParser.parse(text)
            Issue.record("accepted \(text.debugDescription)")
        } catch {
            #expect(error.line == line, "\(text.debugDescription): \(error)")
        }
    }

    @Test func nestingIsBounded() {
        let deep = "a = " + String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: TOMLError.self) { try TOMLParser.parse(deep) }
        let fine = "a = " + String(repeating: "[", count: 10) + String(repeating: "]", count: 10)
        #expect(throws: Never.self) { try TOMLParser.parse(fine) }
    }

    @Test func dottedKeysAreBounded() {
        let deep = (0..<10_000).map { _ in "a" }.joined(separator: ".") + " = 1"
        #expect(throws: TOMLError.self) { try TOMLParser.parse(deep) }
        let header = "[" + (0..<10_000).map { _ in "a" }.joined(separator: ".") + "]"
        #expect(throws: TOMLError.self) { try TOMLParser.parse(header) }
    }

    @Test func manyArrayTablesAreAppendedInPlace() throws {
        let document = try TOMLParser.parse(String(repeating: "[[a]]\nx = 1\n", count: 20_000))
        guard case let .array(items)? = document["a"] else { Issue.record("no array"); return }
        #expect(items.count == 20_000)
    }

    @Test func validDateTimes() throws {
        for text in ["1979-05-27T07:32:00Z", "1979-05-27T00:32:00.999999-07:00", "1979-05-27 07:32:00", "1979-05-27", "07:32:00", "00:32:00.5"] {
            #expect(try TOMLParser.parse("t = \(text)")["t"] == .datetime(text))
        }
    }

    @Test func implicitTablesMayBeDefinedLater() throws {
        let document = try TOMLParser.parse("[a.b]\nx = 1\n[a]\ny = 2")
        guard case let .table(a)? = document["a"] else { Issue.record("no table a"); return }
        #expect(a["y"] == .integer(2))
        #expect(a.keys == ["b", "y"])
    }
}
