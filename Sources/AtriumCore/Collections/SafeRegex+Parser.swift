/// The pattern grammar: a recursive-descent parser from pattern text to `SafeRegex.Node`s.
extension SafeRegex {
    struct Parser {
        let scalars: [Unicode.Scalar]
        var index = 0

        func error(_ message: String) -> SyntaxError {
            SyntaxError(description: "\(message) at position \(self.index + 1)")
        }

        mutating func parseAlternation() throws(SyntaxError) -> Node {
            var branches = [try self.parseSequence()]
            while self.index < self.scalars.count, self.scalars[self.index] == "|" {
                self.index += 1
                branches.append(try self.parseSequence())
            }
            return branches.count == 1 ? branches[0] : .alternation(branches)
        }

        mutating func parseSequence() throws(SyntaxError) -> Node {
            var nodes: [Node] = []
            while self.index < self.scalars.count, self.scalars[self.index] != "|", self.scalars[self.index] != ")" {
                var atom = try self.parseAtom()
                atom = try self.parseQuantifiers(atom)
                nodes.append(atom)
            }
            return .sequence(nodes)
        }

        mutating func parseQuantifiers(_ atom: Node) throws(SyntaxError) -> Node {
            var node = atom
            while self.index < self.scalars.count {
                let scalar = self.scalars[self.index]
                var bounds: (Int, Int?)
                switch scalar {
                case "*": bounds = (0, nil); self.index += 1
                case "+": bounds = (1, nil); self.index += 1
                case "?": bounds = (0, 1); self.index += 1
                case "{":
                    guard let parsed = try self.parseBraces() else { return node }
                    bounds = parsed
                default: return node
                }
                if case .start = node { throw self.error("nothing to repeat") }
                if case .end = node { throw self.error("nothing to repeat") }
                // A lazy marker changes which match is preferred, not whether one exists.
                if self.index < self.scalars.count, self.scalars[self.index] == "?" { self.index += 1 }
                node = .repeated(node, min: bounds.0, max: bounds.1)
            }
            return node
        }

        /// `{n}`, `{n,}`, `{n,m}`; nil (a literal brace) when it is not one of those.
        mutating func parseBraces() throws(SyntaxError) -> (Int, Int?)? {
            var cursor = self.index + 1
            func number() -> Int? {
                var value: Int?
                while cursor < self.scalars.count, let digit = Int(String(self.scalars[cursor])), self.scalars[cursor].isASCII {
                    value = (value ?? 0) * 10 + digit
                    if value! > 1000 { return 1001 }
                    cursor += 1
                }
                return value
            }
            guard let minimum = number() else { return nil }
            var maximum: Int? = minimum
            if cursor < self.scalars.count, self.scalars[cursor] == "," {
                cursor += 1
                maximum = number()
            }
            guard cursor < self.scalars.count, self.scalars[cursor] == "}" else { return nil }
            guard minimum <= SafeRegex.maximumRepeat, (maximum ?? 0) <= SafeRegex.maximumRepeat else {
                throw self.error("repetition counts may be at most \(SafeRegex.maximumRepeat)")
            }
            if let maximum, maximum < minimum { throw self.error("{n,m} needs n ≤ m") }
            self.index = cursor + 1
            return (minimum, maximum)
        }

        mutating func parseAtom() throws(SyntaxError) -> Node {
            let scalar = self.scalars[self.index]
            self.index += 1
            switch scalar {
            case "(":
                if self.index + 1 < self.scalars.count, self.scalars[self.index] == "?" {
                    guard self.scalars[self.index + 1] == ":" else { throw self.error("lookaround and named groups are not supported") }
                    self.index += 2
                }
                let inner = try self.parseAlternation()
                guard self.index < self.scalars.count, self.scalars[self.index] == ")" else { throw self.error("missing ')'") }
                self.index += 1
                return inner
            case "[": return .set(try self.parseClass())
            case ".": return .set(.any)
            case "^": return .start
            case "$": return .end
            case "\\": return .set(try self.parseEscape(inClass: false))
            case "*", "+", "?": throw self.error("nothing to repeat")
            default: return .set(CharacterSet(ranges: [scalar.value...scalar.value], negated: false))
            }
        }

        mutating func parseEscape(inClass: Bool) throws(SyntaxError) -> CharacterSet {
            guard self.index < self.scalars.count else { throw self.error("trailing backslash") }
            let scalar = self.scalars[self.index]
            self.index += 1
            switch scalar {
            case "d": return .digit
            case "D": return CharacterSet(ranges: CharacterSet.digit.ranges, negated: true)
            case "w": return .word
            case "W": return CharacterSet(ranges: CharacterSet.word.ranges, negated: true)
            case "s": return .space
            case "S": return CharacterSet(ranges: CharacterSet.space.ranges, negated: true)
            case "t": return CharacterSet(ranges: [0x09...0x09], negated: false)
            case "n": return CharacterSet(ranges: [0x0A...0x0A], negated: false)
            case "r": return CharacterSet(ranges: [0x0D...0x0D], negated: false)
            default:
                if scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) {
                    throw self.error("unsupported escape \\\(scalar) (backreferences and other escapes are not supported)")
                }
                return CharacterSet(ranges: [scalar.value...scalar.value], negated: false)
            }
        }

        mutating func parseClass() throws(SyntaxError) -> CharacterSet {
            var negated = false
            if self.index < self.scalars.count, self.scalars[self.index] == "^" {
                negated = true
                self.index += 1
            }
            var ranges: [ClosedRange<UInt32>] = []
            var first = true
            while true {
                guard self.index < self.scalars.count else { throw self.error("missing ']'") }
                let scalar = self.scalars[self.index]
                if scalar == "]" && !first {
                    self.index += 1
                    return CharacterSet(ranges: ranges, negated: negated)
                }
                first = false
                self.index += 1
                var low: UInt32
                if scalar == "\\" {
                    let escaped = try self.parseEscape(inClass: true)
                    if escaped.negated || escaped.ranges.count != 1 || escaped.ranges[0].count != 1 {
                        guard !escaped.negated else { throw self.error("negated escapes inside a class are not supported") }
                        ranges += escaped.ranges
                        continue
                    }
                    low = escaped.ranges[0].lowerBound
                } else {
                    low = scalar.value
                }
                if self.index + 1 < self.scalars.count, self.scalars[self.index] == "-", self.scalars[self.index + 1] != "]" {
                    self.index += 1
                    var high = self.scalars[self.index].value
                    self.index += 1
                    if high == UInt32(UInt8(ascii: "\\")) {
                        let escaped = try self.parseEscape(inClass: true)
                        guard !escaped.negated, escaped.ranges.count == 1, escaped.ranges[0].count == 1 else { throw self.error("invalid range") }
                        high = escaped.ranges[0].lowerBound
                    }
                    guard low <= high else { throw self.error("invalid range") }
                    ranges.append(low...high)
                } else {
                    ranges.append(low...low)
                }
            }
        }
    }
}
