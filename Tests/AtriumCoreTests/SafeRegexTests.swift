@testable import AtriumCore
import Testing

@Suite struct SafeRegexTests {
    @Test(arguments: [
        ("^[a-z]+$", "hello", true), ("^[a-z]+$", "Hello", false), ("\\d{3}-\\d{4}", "call 555-1234 now", true),
        ("^\\d{3}-\\d{4}$", "call 555-1234 now", false), ("colou?r", "color", true), ("colou?r", "colour", true),
        ("^(cat|dog)s?$", "dogs", true), ("^(cat|dog)s?$", "cats!", false), ("a.c", "abc", true), ("a.c", "a\nc", false),
        ("^[^@\\s]+@[^@\\s]+\\.[a-z]{2,}$", "ann@example.com", true), ("^[^@\\s]+@[^@\\s]+\\.[a-z]{2,}$", "ann@example", false),
        ("^x{2,3}$", "xx", true), ("^x{2,3}$", "xxxx", false), ("^x{2,}$", "xxxxxxxx", true), ("^(?:ab)+$", "ababab", true),
        ("^\\w+$", "snake_case_9", true), ("^\\W$", "!", true), ("[\\d.]+", "v1.2", true), ("^$", "", true), ("é+", "café", true),
        ("a{,2}", "a{,2}", true), ("^[a\\-z]$", "-", true), ("^\\.$", ".", true), ("^\\.$", "x", false),
    ])
    func matchesLikeJavaScript(pattern: String, text: String, expected: Bool) throws {
        #expect(try SafeRegex(pattern).matches(text) == expected, "/\(pattern)/ on \(text)")
    }

    @Test func patternsThatCannotRunInLinearTimeOrAreBrokenAreRefused() {
        for pattern in [
            "(a)\\1", "(?=a)", "(?<name>a)", "a{1000}", "a{5,2}", "(a", "a)", "*a", "[a", "\\", "a{101}",
            String(repeating: "a", count: 300),
            // Small to write, huge once the repetitions are expanded.
            "((a?){100}){19}b", "(a{100}){10}", "((((a|b){10}){10}){10})",
        ] {
            #expect(throws: SafeRegex.SyntaxError.self, "\(pattern)") { try SafeRegex(pattern) }
        }
    }

    /// The worst patterns the limits let through: nested and stacked quantifiers, alternations of
    /// the same thing, wide classes, anchors that never match. On the worst texts for them,
    /// matching never takes more steps than the bound the definition is checked against.
    static let worstPatterns = [
        "^(a+)+b$", "(a|a)*c", "(a*)*(b*)*(c*)*$", "(a?){100}a{100}", "(a?){60}(b?){60}(c?){60}", "(.*a){20}$",
        "([a-z0-9._%+-]|[^@\\s]|\\w|\\d)+@x", "^(\\w+\\s?)*$", "((ab|a)(bc|c)?)*$", "(x+x+)+y",
        "[a-cA-Ce-gE-Gi-kI-Km-oM-Oq-sQ-Su-wU-W0-2457-9_]{40}z",
    ]

    static func worstTexts(length: Int) -> [String] {
        let cycle = Array("abcx ")
        return [
            String(repeating: "a", count: length),
            String(repeating: "a", count: max(0, length - 1)) + "!",
            String(repeating: "ab", count: length / 2),
            String((0..<length).map { cycle[($0 * 7 + 3) % cycle.count] }),
            String(repeating: "x", count: length),
            String(repeating: "é", count: length),
        ]
    }

    @Test(arguments: worstPatterns)
    func matchingStaysWithinTheStepsTheDefinitionWasCheckedAgainst(pattern: String) throws {
        let regex = try SafeRegex(pattern)
        // The longest text a field with this pattern may have under the budget.
        let length = FieldDefinition.patternBudget / regex.costPerCharacter - 1
        #expect(length > 0)
        #expect(regex.cost(forLength: length) <= FieldDefinition.patternBudget)
        for text in Self.worstTexts(length: length) {
            let evaluation = regex.evaluate(text)
            #expect(evaluation.matched != nil)
            #expect(evaluation.steps <= regex.cost(forLength: text.unicodeScalars.count), "/\(pattern)/ on \(text.prefix(20))…")
        }
    }

    @Test func aStepLimitStopsMatchingUndecided() throws {
        let regex = try SafeRegex("(a|a)*b")
        let evaluation = regex.evaluate(String(repeating: "a", count: 10_000), stepLimit: 1000)
        #expect(evaluation.matched == nil)
        // It stops within one character's worth of steps past the limit.
        #expect(evaluation.steps <= 1000 + regex.costPerCharacter)
        #expect(regex.evaluate(String(repeating: "a", count: 10_000)).matched == false)
    }
}
