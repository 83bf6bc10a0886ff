import AtriumCore
import Foundation
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
        for pattern in ["(a)\\1", "(?=a)", "(?<name>a)", "a{1000}", "a{5,2}", "(a", "a)", "*a", "[a", "\\", "a{101}", String(repeating: "a", count: 300)] {
            #expect(throws: SafeRegex.SyntaxError.self, "\(pattern)") { try SafeRegex(pattern) }
        }
    }

    @Test func catastrophicPatternsStayFast() throws {
        // (a+)+b backtracks exponentially in a backtracking engine; here it is linear.
        let regex = try SafeRegex("^(a+)+b$")
        let input = String(repeating: "a", count: 20_000)
        let started = ContinuousClock.now
        #expect(!regex.matches(input))
        #expect(try SafeRegex("^(a|a)*$").matches(input))
        // Generous bound: a backtracking engine would not finish at all.
        #expect(ContinuousClock.now - started < .seconds(10))
    }
}
