/// A regular expression whose matching cost is known before it runs: it is compiled to an NFA
/// and run as a Pike VM, never by backtracking, so matching a text of n characters takes at
/// most `cost(forLength: n)` steps — the program's `costPerCharacter` for each character, plus
/// one. Collections bound that product when they are defined (see `FieldDefinition`), and the
/// matcher counts its steps, so no stored value can cost more than the definition allowed.
///
/// It supports literals, `.`, classes (`[a-z]`, `[^…]`, `\d \w \s` and their negations), groups,
/// alternation, anchors and quantifiers `* + ? {n} {n,} {n,m}` (counts up to 100). Backreferences
/// and lookaround, which cannot be matched in linear time, are refused. Matching searches like
/// JavaScript's `test`: anywhere in the value, unless anchored with `^`/`$`. Characters are
/// Unicode scalars.
public struct SafeRegex: Sendable, Hashable {
    public struct SyntaxError: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    enum Instruction: Sendable {
        case scalar(CharacterSet)
        case split(Int, Int)
        case jump(Int)
        case assertStart
        case assertEnd
        case match
    }

    struct CharacterSet: Sendable {
        var ranges: [ClosedRange<UInt32>]
        var negated: Bool

        func contains(_ scalar: Unicode.Scalar) -> Bool {
            let value = scalar.value
            let inside = self.ranges.contains { $0.contains(value) }
            return inside != self.negated
        }

        static let any = CharacterSet(ranges: [0x0A...0x0A], negated: true)
        static let digit = CharacterSet(ranges: [0x30...0x39], negated: false)
        static let word = CharacterSet(ranges: [0x30...0x39, 0x41...0x5A, 0x5F...0x5F, 0x61...0x7A], negated: false)
        static let space = CharacterSet(ranges: [0x09...0x0D, 0x20...0x20, 0xA0...0xA0, 0x2028...0x2029], negated: false)
    }

    indirect enum Node {
        case set(CharacterSet)
        case sequence([Node])
        case alternation([Node])
        case repeated(Node, min: Int, max: Int?)
        case start
        case end
    }

    public let pattern: String
    let program: [Instruction]
    /// The most steps one character of input can cost: each instruction entered once, and each
    /// character class tested once per range it has.
    public let costPerCharacter: Int

    public static let maximumPatternLength = 256
    static let maximumRepeat = 100
    /// Instructions a compiled pattern may have; `((a?){100}){19}` and the like stop here.
    static let maximumProgram = 500

    public init(_ pattern: String) throws(SyntaxError) {
        guard pattern.unicodeScalars.count <= Self.maximumPatternLength else {
            throw SyntaxError(description: "patterns may be at most \(Self.maximumPatternLength) characters")
        }
        var parser = Parser(scalars: Array(pattern.unicodeScalars))
        let node = try parser.parseAlternation()
        guard parser.index == parser.scalars.count else { throw SyntaxError(description: "unbalanced ')'") }
        var program: [Instruction] = []
        try Self.compile(node, into: &program)
        program.append(.match)
        self.pattern = pattern
        self.program = program
        self.costPerCharacter = program.reduce(0) { cost, instruction in
            if case .scalar(let set) = instruction { return cost + 1 + set.ranges.count }
            return cost + 1
        }
    }

    public static func == (lhs: SafeRegex, rhs: SafeRegex) -> Bool {
        lhs.pattern == rhs.pattern
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(self.pattern)
    }

    /// The most steps matching a text of `length` characters can take.
    public func cost(forLength length: Int) -> Int {
        let (cost, overflow) = self.costPerCharacter.multipliedReportingOverflow(by: length + 1)
        return overflow ? .max : cost
    }

    private static func compile(_ node: Node, into program: inout [Instruction]) throws(SyntaxError) {
        guard program.count < Self.maximumProgram else {
            throw SyntaxError(description: "the pattern is too complex (its repetitions expand past \(Self.maximumProgram) steps)")
        }
        switch node {
        case .set(let set):
            program.append(.scalar(set))
        case .start:
            program.append(.assertStart)
        case .end:
            program.append(.assertEnd)
        case .sequence(let nodes):
            for node in nodes { try self.compile(node, into: &program) }
        case .alternation(let branches):
            var jumps: [Int] = []
            for (index, branch) in branches.enumerated() {
                if index < branches.count - 1 {
                    let split = program.count
                    program.append(.split(split + 1, 0))
                    try self.compile(branch, into: &program)
                    jumps.append(program.count)
                    program.append(.jump(0))
                    program[split] = .split(split + 1, program.count)
                } else {
                    try self.compile(branch, into: &program)
                }
            }
            for jump in jumps { program[jump] = .jump(program.count) }
        case .repeated(let inner, let min, let max):
            for _ in 0..<min { try self.compile(inner, into: &program) }
            if let max {
                // Each optional copy may be skipped, which skips the rest too.
                var exits: [Int] = []
                for _ in min..<max {
                    exits.append(program.count)
                    program.append(.split(program.count + 1, 0))
                    try self.compile(inner, into: &program)
                }
                for exit in exits { program[exit] = .split(exit + 1, program.count) }
            } else {
                let loop = program.count
                program.append(.split(loop + 1, 0))
                try self.compile(inner, into: &program)
                program.append(.jump(loop))
                program[loop] = .split(loop + 1, program.count)
            }
        }
        guard program.count <= Self.maximumProgram else {
            throw SyntaxError(description: "the pattern is too complex (its repetitions expand past \(Self.maximumProgram) steps)")
        }
    }

    /// How a match went: `matched` is nil when it stopped at the step limit.
    public struct Evaluation: Sendable, Equatable {
        public let matched: Bool?
        public let steps: Int
    }

    /// Whether the pattern matches somewhere in `text`.
    public func matches(_ text: String) -> Bool {
        self.evaluate(text).matched == true
    }

    /// Runs the pattern over `text`, counting steps, and stops undecided past `stepLimit`.
    ///
    /// Every array is allocated once, sized by the program, before the first character: the
    /// per-character loop allocates nothing. Each instruction is entered at most once per
    /// position (a generation mark per instruction), which is what makes the cost linear.
    public func evaluate(_ text: String, stepLimit: Int = .max) -> Evaluation {
        let scalars = Array(text.unicodeScalars)
        let size = self.program.count
        var current: [Int] = []
        current.reserveCapacity(size)
        var next: [Int] = []
        next.reserveCapacity(size)
        var stack: [Int] = []
        stack.reserveCapacity(size)
        var entered = [Int](repeating: -1, count: size)
        var steps = 0
        if self.addThread(0, at: 0, of: scalars.count, to: &current, entered: &entered, stack: &stack, steps: &steps) {
            return Evaluation(matched: true, steps: steps)
        }
        for position in 0..<scalars.count {
            let scalar = scalars[position]
            let generation = position + 1
            next.removeAll(keepingCapacity: true)
            for pc in current {
                guard case .scalar(let set) = self.program[pc] else { continue }
                steps += set.ranges.count
                if set.contains(scalar),
                   self.addThread(pc + 1, at: generation, of: scalars.count, to: &next, entered: &entered, stack: &stack, steps: &steps) {
                    return Evaluation(matched: true, steps: steps)
                }
            }
            // A new thread starts at every position: an unanchored search.
            if self.addThread(0, at: generation, of: scalars.count, to: &next, entered: &entered, stack: &stack, steps: &steps) {
                return Evaluation(matched: true, steps: steps)
            }
            if steps > stepLimit { return Evaluation(matched: nil, steps: steps) }
            swap(&current, &next)
        }
        return Evaluation(matched: false, steps: steps)
    }

    /// Follows jumps, splits and assertions from `start` at `position`, collecting the character
    /// tests reached into `list`; true when a match state is reached. An instruction already
    /// entered at this position is not entered again.
    private func addThread(
        _ start: Int, at position: Int, of count: Int, to list: inout [Int],
        entered: inout [Int], stack: inout [Int], steps: inout Int
    ) -> Bool {
        guard entered[start] != position else { return false }
        entered[start] = position
        stack.removeAll(keepingCapacity: true)
        stack.append(start)
        while let pc = stack.popLast() {
            steps += 1
            var targets = (-1, -1)
            switch self.program[pc] {
            case .match: return true
            case .jump(let target): targets.0 = target
            case .split(let first, let second): targets = (second, first)
            case .assertStart: if position == 0 { targets.0 = pc + 1 }
            case .assertEnd: if position == count { targets.0 = pc + 1 }
            case .scalar: list.append(pc)
            }
            if targets.0 >= 0, entered[targets.0] != position {
                entered[targets.0] = position
                stack.append(targets.0)
            }
            if targets.1 >= 0, entered[targets.1] != position {
                entered[targets.1] = position
                stack.append(targets.1)
            }
        }
        return false
    }
}
