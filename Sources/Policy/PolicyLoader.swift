import Foundation
import SocketFilter
import Yams

/// A policy that cannot be used: where (file:line:column, 1-based) and what was expected there.
public struct PolicyError: Error, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    public var message: String

    public init(file: String, line: Int, column: Int, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String { "\(file):\(line):\(column): \(message)" }
}

/// Reads a policy file (YAML) into `Policy`, checking every field; the first problem is thrown as a
/// `PolicyError` naming its position.
///
/// ```yaml
/// rules:
///   - name: vanished-address
///     on: address-removed          # link-down | link-up | request | {interval: 30s}
///     interface: eth*              # optional, for address and link events
///     match: 'dport = :443'        # or {filter: ..., uid: [1000, 2000-2999], cgroup: /sys/fs/cgroup/x, loopback: true}
///     except: {uid: [0]}           # same shape as match
///     netns: all                   # or a name, or a list of names and globs; `host` = the daemon's own
///     action: kill                 # or audit
/// ```
public enum PolicyLoader {
    public static func load(path: String) throws -> Policy {
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "permission denied" : "no such file"
            throw PolicyError(file: path, line: 0, column: 0, message: "cannot open policy file: \(reason)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw PolicyError(file: path, line: 0, column: 0, message: "policy file is not UTF-8 text")
        }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws -> Policy {
        var reader = Reader(file: file, source: text)
        return try reader.policy()
    }
}

private let ruleFields = ["name", "on", "interface", "match", "except", "netns", "action"]
private let selectionFields = ["filter", "uid", "cgroup", "loopback"]

private struct Reader {
    let file: String
    let source: String
    lazy var lines: [Substring] = source.split(separator: "\n", omittingEmptySubsequences: false)

    init(file: String, source: String) {
        self.file = file
        self.source = source
    }

    func error(_ node: Node?, _ message: String) -> PolicyError {
        let m = node?.mark
        return PolicyError(file: file, line: m?.line ?? 1, column: m?.column ?? 1, message: message)
    }

    mutating func policy() throws -> Policy {
        let root: Node?
        do {
            root = try Yams.compose(yaml: source)
        } catch let e as YamlError {
            throw syntaxError(e)
        }
        guard let root else { throw PolicyError(file: file, line: 1, column: 1, message: "empty policy: expected a mapping with `rules:`") }
        guard let top = root.mapping else { throw error(root, "expected a mapping with `rules:` at the top level") }
        var rulesNode: Node?
        for (k, v) in top {
            guard let key = k.scalar?.string else { throw error(k, "expected a field name") }
            guard key == "rules" else { throw error(k, "unknown field '\(key)' (expected: rules)") }
            rulesNode = v
        }
        guard let rulesNode else { throw error(root, "missing field 'rules'") }
        guard let seq = rulesNode.sequence else {
            if rulesNode.scalar?.string == "" || rulesNode.scalar?.tag.rawValue == Tag.Name.null.rawValue { return Policy(rules: [], path: file) }
            throw error(rulesNode, "expected a list of rules under 'rules'")
        }
        var rules: [Rule] = []
        var seen: [String: Int] = [:]
        for item in seq {
            let rule = try self.rule(item)
            if let first = seen[rule.name] {
                throw error(item, "duplicate rule name '\(rule.name)' (first used on line \(first))")
            }
            seen[rule.name] = rule.line
            rules.append(rule)
        }
        return Policy(rules: rules, path: file)
    }

    func syntaxError(_ e: YamlError) -> PolicyError {
        switch e {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
            return PolicyError(file: file, line: mark.line, column: mark.column, message: "YAML syntax error: \(problem)")
        case .duplicatedKeysInMapping(let dups, let ctx):
            return PolicyError(file: file, line: ctx.mark.line, column: ctx.mark.column,
                               message: "duplicate field \(dups.map { "'\($0)'" }.joined(separator: ", "))")
        default:
            return PolicyError(file: file, line: 1, column: 1, message: "YAML error: \(e)")
        }
    }

    mutating func rule(_ node: Node) throws -> Rule {
        guard let map = node.mapping else { throw error(node, "expected a rule (a mapping with name, on, action, ...)") }
        var fields: [String: (Node, Node)] = [:]
        for (k, v) in map {
            guard let key = k.scalar?.string else { throw error(k, "expected a field name") }
            guard ruleFields.contains(key) else {
                throw error(k, "unknown field '\(key)' (expected one of: \(ruleFields.joined(separator: ", ")))")
            }
            fields[key] = (k, v)
        }
        guard let nameNode = fields["name"]?.1 else { throw error(node, "rule without 'name'") }
        let name = try string(nameNode, "a rule name")
        guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }) else {
            throw error(nameNode, "expected a rule name of letters, digits, '-', '_' or '.', got '\(name)'")
        }
        guard let onNode = fields["on"]?.1 else { throw error(node, "rule '\(name)' without 'on' (expected: address-removed, link-down, link-up, request or {interval: 30s})") }
        let trigger = try self.trigger(onNode)
        var rule = Rule(name: name, trigger: trigger, line: node.mark?.line ?? 0)
        if let (_, v) = fields["interface"] {
            rule.interface = try string(v, "an interface name or glob")
            switch trigger {
            case .addressRemoved, .linkDown, .linkUp: break
            default: throw error(v, "'interface' applies only to address-removed, link-down and link-up rules")
            }
        }
        if let (_, v) = fields["match"] { rule.match = try selection(v) }
        if let (_, v) = fields["except"] { rule.except = try selection(v) }
        if let (_, v) = fields["netns"] { rule.netns = try namespaces(v) }
        if let (_, v) = fields["action"] {
            let s = try string(v, "kill or audit")
            guard let a = RuleAction(rawValue: s) else { throw error(v, "unknown action '\(s)' (expected: kill or audit)") }
            rule.action = a
        }
        if rule.match.isEmpty, trigger != .addressRemoved, trigger != .linkDown {
            throw error(node, "rule '\(name)' on \(trigger) needs a 'match' (it would select every socket)")
        }
        return rule
    }

    func trigger(_ node: Node) throws -> Trigger {
        if let m = node.mapping {
            guard m.count == 1, let (k, v) = m.first.map({ ($0.key, $0.value) }), let key = k.scalar?.string else {
                throw error(node, "expected one of: address-removed, link-down, link-up, request, {interval: 30s}")
            }
            guard key == "interval" else { throw error(k, "unknown event '\(key)' (expected: interval)") }
            let text = try string(v, "a duration such as 30s")
            guard let seconds = Self.duration(text), seconds >= 0.01 else {
                throw error(v, "bad duration '\(text)' (expected a number with ms, s, m or h, at least 10ms, e.g. 30s)")
            }
            return .interval(seconds)
        }
        let s = try string(node, "an event")
        switch s {
        case "address-removed": return .addressRemoved
        case "link-down": return .linkDown
        case "link-up": return .linkUp
        case "request": return .request
        default:
            if s.hasPrefix("interval") {
                throw error(node, "write an interval as {interval: 30s} or `on:` then `interval: 30s` on the next line")
            }
            throw error(node, "unknown event '\(s)' (expected: address-removed, link-down, link-up, request or {interval: 30s})")
        }
    }

    static func duration(_ text: String) -> Double? {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            guard let v = Double(text.dropLast(suffix.count)), v.isFinite, v >= 0 else { return nil }
            return v * factor
        }
        return nil
    }

    mutating func selection(_ node: Node) throws -> Selection {
        if node.scalar != nil {
            return Selection(filter: try filter(node))
        }
        guard let map = node.mapping else { throw error(node, "expected a filter string or a mapping with filter, uid, cgroup, loopback") }
        var sel = Selection()
        for (k, v) in map {
            guard let key = k.scalar?.string else { throw error(k, "expected a field name") }
            switch key {
            case "filter": sel.filter = try filter(v)
            case "uid": sel.uids = try uids(v)
            case "cgroup":
                let p = try string(v, "a cgroup v2 directory path")
                guard p.hasPrefix("/") else { throw error(v, "expected an absolute cgroup path (e.g. /sys/fs/cgroup/app.slice), got '\(p)'") }
                sel.cgroup = p
            case "loopback":
                guard let b = v.scalar?.string, ["true", "false"].contains(b) else { throw error(v, "expected true or false") }
                sel.loopback = b == "true"
            default:
                throw error(k, "unknown field '\(key)' (expected one of: \(selectionFields.joined(separator: ", ")))")
            }
        }
        return sel
    }

    /// A filter string, checked with the kill language's parser; a syntax error is reported at its
    /// position inside the YAML file.
    mutating func filter(_ node: Node) throws -> String {
        let raw = try string(node, "a filter expression")
        let text = raw.replacingOccurrences(of: "\n", with: " ")
        do {
            _ = try SocketFilter.parse(text)
        } catch let e as FilterSyntaxError {
            let (line, column) = position(of: e.column, in: node, text: raw)
            throw PolicyError(file: file, line: line, column: column, message: "bad filter: \(e.message) at '\(e.token)'")
        }
        return text
    }

    /// Where column `c` (1-based) of a scalar's value lies in the file.
    mutating func position(of c: Int, in node: Node, text: String) -> (Int, Int) {
        guard let mark = node.mark, let scalar = node.scalar else { return (node.mark?.line ?? 1, node.mark?.column ?? 1) }
        switch scalar.style {
        case .literal, .folded:
            // Content starts on the next line, indented; each source line gives its text plus one
            // separator (a newline, or the space folding puts in its place).
            var remaining = c - 1
            var lineNo = mark.line + 1
            while lineNo - 1 < lines.count {
                let src = lines[lineNo - 1]
                let indent = src.prefix(while: { $0 == " " }).count
                let length = src.count - indent
                if remaining <= length { return (lineNo, indent + remaining + 1) }
                remaining -= length + 1
                lineNo += 1
            }
            return (mark.line, mark.column)
        case .singleQuoted, .doubleQuoted:
            return (mark.line, mark.column + c)
        default:
            return (mark.line, mark.column + c - 1)
        }
    }

    func uids(_ node: Node) throws -> [ClosedRange<UInt32>] {
        let items: [Node] = node.sequence.map { Array($0) } ?? [node]
        return try items.map { item in
            guard let s = item.scalar?.string else { throw error(item, "expected a uid or a range like 1000-1999") }
            let parts = s.split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count <= 2, let lo = UInt32(parts[0]), let hi = parts.count == 2 ? UInt32(parts[1]) : lo, lo <= hi else {
                throw error(item, "bad uid '\(s)' (expected a number or a range like 1000-1999)")
            }
            return lo...hi
        }
    }

    func namespaces(_ node: Node) throws -> NamespaceSelector {
        let items: [Node] = node.sequence.map { Array($0) } ?? [node]
        var names: [String] = []
        for item in items {
            let s = try string(item, "a namespace name, a glob, host or all")
            if s == "all" {
                guard items.count == 1 else { throw error(item, "'all' cannot be combined with other namespaces") }
                return .all
            }
            guard !s.isEmpty, !s.contains("/") else { throw error(item, "expected a namespace name under /run/netns or a glob, got '\(s)'") }
            names.append(s)
        }
        guard !names.isEmpty else { throw error(node, "expected at least one namespace (or all)") }
        return .patterns(names)
    }

    func string(_ node: Node, _ expected: String) throws -> String {
        guard let s = node.scalar?.string else { throw error(node, "expected \(expected)") }
        return s
    }
}
