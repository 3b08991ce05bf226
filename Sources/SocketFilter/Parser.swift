#if canImport(Glibc)
import Glibc
#endif
import SockDiag

/// A filter that could not be parsed: where (1-based column in the filter text), the offending
/// token, and what was expected. `description` shows the text with a caret under the column.
public struct FilterSyntaxError: Error, Equatable, CustomStringConvertible {
    public var text: String
    public var column: Int
    public var token: String
    public var message: String

    public var description: String {
        let pad = String(repeating: " ", count: max(0, column - 1))
        return "filter error at column \(column): \(message)\n  \(text)\n  \(pad)^"
    }
}

struct Token {
    var text: String
    var column: Int
    /// True for a token produced from syntax characters `(`, `)`, `!` split off a word.
    var isPunct: Bool = false
}

/// Splits the filter into words like ss (whitespace, backslash escapes), and additionally splits off
/// parentheses, a leading `!`, and comparison operators glued to a keyword or value.
enum Lexer {
    static let keywords = ["sport", "dport", "src", "dst", "dev", "fwmark", "cgroup", "uid", "pid", "comm", "cookie"]
    static let ops = ["==", "!=", "<=", ">=", "=", "<", ">"]

    static func tokenize(_ text: String) -> [Token] {
        var words: [Token] = []
        let chars = Array(text)
        var i = 0
        while i < chars.count {
            while i < chars.count, chars[i] == " " || chars[i] == "\t" { i += 1 }
            guard i < chars.count else { break }
            let start = i
            var w = ""
            var escapedAt: Set<Int> = []
            while i < chars.count, chars[i] != " ", chars[i] != "\t" {
                if chars[i] == "\\", i + 1 < chars.count {
                    escapedAt.insert(w.count)
                    w.append(chars[i + 1]); i += 2; continue
                }
                w.append(chars[i]); i += 1
            }
            words.append(contentsOf: split(w, column: start + 1, escaped: escapedAt))
        }
        return words
    }

    private static func split(_ word: String, column: Int, escaped: Set<Int>) -> [Token] {
        var out: [Token] = []
        var w = Array(word)
        var col = column
        var off = 0
        // leading "(" and "!" (not "!=")
        while !w.isEmpty, !escaped.contains(off) {
            if w[0] == "(" {
                out.append(Token(text: "(", column: col, isPunct: true))
            } else if w[0] == "!", w.count > 1, w[1] != "=" {
                out.append(Token(text: "!", column: col, isPunct: true))
            } else { break }
            w.removeFirst(); col += 1; off += 1
        }
        // trailing ")"
        var trailing = 0
        while trailing < w.count, w[w.count - 1 - trailing] == ")", !escaped.contains(off + w.count - 1 - trailing) {
            trailing += 1
        }
        if trailing == w.count, trailing > 0 { trailing -= 1 }  // a lone ")" stays a word
        let core = Array(w[0..<(w.count - trailing)])
        if !core.isEmpty { out.append(contentsOf: splitOperators(String(core), column: col)) }
        for k in 0..<trailing {
            out.append(Token(text: ")", column: col + core.count + k, isPunct: true))
        }
        return out
    }

    /// `dport>=1024` -> `dport` `>=` `1024`; `=:80` -> `=` `:80`.
    private static func splitOperators(_ word: String, column: Int) -> [Token] {
        for kw in keywords where word.hasPrefix(kw) && word.count > kw.count {
            let rest = String(word.dropFirst(kw.count))
            if ops.contains(where: { rest.hasPrefix($0) }) {
                return [Token(text: kw, column: column)] + splitOperators(rest, column: column + kw.count)
            }
        }
        for op in ops where word.hasPrefix(op) && word.count > op.count {
            let rest = String(word.dropFirst(op.count))
            if ops.contains(where: { rest.hasPrefix($0) }) { break }
            return [Token(text: op, column: column), Token(text: rest, column: column + op.count)]
        }
        return [Token(text: word, column: column)]
    }
}

/// Recursive-descent parser for ss's FILTER language plus sockctl's terms.
struct Parser {
    let text: String
    var tokens: [Token]
    var pos = 0
    var stateMask: UInt32? = nil

    init(_ text: String) {
        self.text = text
        self.tokens = Lexer.tokenize(text)
    }

    var endColumn: Int { text.count + 1 }

    func error(_ message: String, at t: Token?) -> FilterSyntaxError {
        FilterSyntaxError(text: text, column: t?.column ?? endColumn, token: t?.text ?? "", message: message)
    }

    var peek: Token? { pos < tokens.count ? tokens[pos] : nil }
    mutating func next() -> Token? {
        defer { pos += 1 }
        return peek
    }

    enum Joiner { case and, or }
    static func joiner(_ t: Token) -> Joiner? {
        switch t.text {
        case "and", "&", "&&": return .and
        case "or", "|", "||": return .or
        default: return nil
        }
    }
    static func isNot(_ t: Token) -> Bool { t.text == "!" || t.text == "not" }

    mutating func parseAll() throws -> FilterExpr? {
        let e = try parseSequence(depth: 0)
        if let t = peek { throw error("unexpected '\(t.text)'", at: t) }
        return e
    }

    mutating func parseSequence(depth: Int) throws -> FilterExpr? {
        var acc: FilterExpr? = nil
        var pending: (Joiner, Token)? = nil
        while let t = peek {
            if t.text == ")" {
                if depth > 0 { break }
                throw error("unmatched ')'", at: t)
            }
            if let j = Parser.joiner(t) {
                if let p = pending { throw error("expected a term after '\(p.1.text)', found '\(t.text)'", at: t) }
                if acc == nil { throw error("expected a term before '\(t.text)'", at: t) }
                pending = (j, t); pos += 1; continue
            }
            if t.text == "state" || t.text == "exclude" || t.text == "excl" {
                if depth > 0 {
                    throw error("'\(t.text)' selects states for the whole filter and cannot be inside parentheses", at: t)
                }
                if let p = pending { throw error("'\(t.text)' cannot follow '\(p.1.text)'", at: t) }
                try parseStateSelector()
                continue
            }
            let term = try parseUnary(depth: depth)
            if let a = acc {
                acc = (pending?.0 ?? .and) == .and ? .and(a, term) : .or(a, term)
            } else {
                acc = term
            }
            pending = nil
        }
        if let p = pending { throw error("expected a term after '\(p.1.text)'", at: peek) }
        return acc
    }

    mutating func parseStateSelector() throws {
        let kw = next()!
        guard let name = next() else { throw error("expected a state name after '\(kw.text)'", at: nil) }
        guard let m = StateNames.mask(for: name.text) else {
            throw error("unknown state '\(name.text)' (expected one of: \(StateNames.known))", at: name)
        }
        if kw.text == "state" {
            stateMask = (stateMask ?? 0) | m
        } else {
            stateMask = (stateMask ?? StateNames.all) & ~m
        }
    }

    mutating func parseUnary(depth: Int) throws -> FilterExpr {
        guard let t = peek else { throw error("expected a term", at: nil) }
        if Parser.isNot(t) {
            pos += 1
            guard peek != nil else { throw error("expected a term after '\(t.text)'", at: nil) }
            return .not(try parseUnary(depth: depth))
        }
        if t.text == "(" {
            pos += 1
            guard let inner = try parseSequence(depth: depth + 1) else {
                if let c = peek, c.text == ")" { throw error("empty parentheses", at: c) }
                throw error("missing ')' for '(' at column \(t.column)", at: nil)
            }
            guard let c = next(), c.text == ")" else { throw error("missing ')' for '(' at column \(t.column)", at: nil) }
            return inner
        }
        return try parseCondition()
    }

    // MARK: conditions

    /// Reads an optional operator; returns nil when the next token is not one.
    mutating func comparison() -> FilterComparison? {
        guard let t = peek else { return nil }
        let op: FilterComparison?
        switch t.text {
        case "=", "==", "eq": op = .eq
        case "!=", "ne", "neq": op = .ne
        case "<", "lt": op = .lt
        case "<=", "le", "leq": op = .le
        case ">", "gt": op = .gt
        case ">=", "ge", "geq": op = .ge
        default: op = nil
        }
        if op != nil { pos += 1 }
        return op
    }

    mutating func operand(after kw: Token, _ op: FilterComparison?, what: String) throws -> Token {
        let shown = op.map { "\(kw.text) \($0.rawValue)" } ?? kw.text
        guard let v = peek, !v.isPunct, Parser.joiner(v) == nil, !Parser.isNot(v) else {
            throw error("expected \(what) after '\(shown)'", at: peek)
        }
        pos += 1
        return v
    }

    mutating func parseCondition() throws -> FilterExpr {
        let kw = next()!
        let col = kw.column
        func leaf(_ t: FilterTerm) -> FilterExpr { .term(t, column: col) }
        func eqOrNe(_ op: FilterComparison?, _ v: Token, _ e: FilterExpr) throws -> FilterExpr {
            switch op {
            case nil, .eq?: return e
            case .ne?: return .not(e)
            default: throw error("'\(kw.text)' only takes '=' or '!='", at: tokens[pos - 2])
            }
        }
        switch kw.text {
        case "src", "dst":
            let side: FilterSide = kw.text == "src" ? .source : .destination
            let op = comparison()
            let v = try operand(after: kw, op, what: "an address")
            let c = try HostParser.parse(v.text) { msg in error(msg, at: v) }
            return try eqOrNe(op, v, leaf(.host(side, c)))
        case "sport", "dport":
            let side: FilterSide = kw.text == "sport" ? .source : .destination
            let op = comparison()
            let v = try operand(after: kw, op, what: "a port")
            var p = Substring(v.text)
            if p.hasPrefix(":") { p = p.dropFirst() }
            guard let port = HostParser.port(String(p)) else {
                throw error("expected a port after '\(kw.text)\(op.map { " " + $0.rawValue } ?? "")', found '\(v.text)'", at: v)
            }
            return leaf(.port(side, op ?? .eq, port))
        case "dev":
            let op = comparison()
            let v = try operand(after: kw, op, what: "an interface name or index")
            return try eqOrNe(op, v, leaf(.device(name: v.text, index: nil)))
        case "fwmark":
            let op = comparison()
            let v = try operand(after: kw, op, what: "a mark (VALUE or VALUE/MASK)")
            let parts = v.text.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count <= 2, let mark = HostParser.cNumber(String(parts[0]), max: UInt64(UInt32.max)),
                  let mask = parts.count == 2 ? HostParser.cNumber(String(parts[1]), max: UInt64(UInt32.max)) : 0xFFFF_FFFF
            else { throw error("expected a mark (VALUE or VALUE/MASK) after 'fwmark', found '\(v.text)'", at: v) }
            return try eqOrNe(op, v, leaf(.mark(value: UInt32(mark), mask: UInt32(mask))))
        case "cgroup":
            let op = comparison()
            let v = try operand(after: kw, op, what: "a cgroup path")
            return try eqOrNe(op, v, leaf(.cgroup(path: v.text, id: nil)))
        case "autobound":
            return leaf(.autobound)
        case "uid":
            let op = comparison()
            let v = try operand(after: kw, op, what: "a uid (N, N-M or a user name)")
            let parts = v.text.split(separator: "-", maxSplits: 1)
            if parts.count == 2, let a = UInt32(parts[0]), let b = UInt32(parts[1]) {
                guard a <= b else { throw error("empty uid range '\(v.text)'", at: v) }
                return try eqOrNe(op, v, leaf(.uidRange(a, b)))
            }
            if let n = UInt32(v.text) { return leaf(.uid(op ?? .eq, n)) }
            if let pw = getpwnam(v.text) { return leaf(.uid(op ?? .eq, pw.pointee.pw_uid)) }
            throw error("expected a uid (N, N-M or a user name) after 'uid', found '\(v.text)'", at: v)
        case "pid":
            let op = comparison()
            let v = try operand(after: kw, op, what: "a process id")
            guard let n = Int32(v.text), n > 0 else { throw error("expected a process id after 'pid', found '\(v.text)'", at: v) }
            return try eqOrNe(op, v, leaf(.pid(n)))
        case "comm":
            let op = comparison()
            let v = try operand(after: kw, op, what: "a command name")
            return try eqOrNe(op, v, leaf(.comm(v.text)))
        case "cookie":
            let op = comparison()
            let v = try operand(after: kw, op, what: "a socket cookie")
            guard let n = HostParser.cNumber(v.text, max: UInt64.max) else {
                throw error("expected a socket cookie after 'cookie', found '\(v.text)'", at: v)
            }
            return try eqOrNe(op, v, leaf(.cookie(n)))
        default:
            if kw.text == "(" || kw.text == ")" { throw error("unexpected '\(kw.text)'", at: kw) }
            throw error("unknown term '\(kw.text)' (expected src, dst, sport, dport, dev, fwmark, cgroup, autobound, uid, pid, comm, cookie, state, exclude)", at: kw)
        }
    }
}
