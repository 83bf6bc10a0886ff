@testable import AtriumHTTP
import Testing

/// The media type a request body is checked against, read from `Content-Type` byte by byte.
@Suite struct MediaTypeTests {
    @Test(arguments: [
        ("application/json", "application/json"),
        ("Application/JSON", "application/json"),
        ("application/json; charset=utf-8", "application/json"),
        (" \tapplication/json \t;charset=utf-8", "application/json"),
        ("application/merge-patch+json", "application/merge-patch+json"),
        ("text/plain", "text/plain"),
        (";application/json", ""),
        ("", ""),
        ("   ", ""),
        ("application/jsön", "application/jsön"),
    ])
    func mediaTypeWithoutParameters(header: String, expected: String) {
        #expect(JSONBody.mediaType(header) == expected)
    }
}
