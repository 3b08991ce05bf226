import ArgumentParser
import SockCtlCLIBase
import Dispatch
import Foundation
import Logging
import Handoff
import Policy

struct DaemonCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon",
        abstract: FullVerb.daemon.abstract,
        discussion: """
        The policy is a YAML file of rules (see README: Policy daemon). Every socket acted on is printed \
        to stdout as a JSON line; logs go to stderr. SIGHUP or POST /v1/reload loads the policy again; \
        a bad policy is rejected and the old one keeps running.
          sockctl daemon --check /etc/sockctl/policy.yaml
          sockctl daemon --config /etc/sockctl/policy.yaml --api unix:///run/sockctl.sock \
          sockctl daemon --config policy.yaml --api tcp://127.0.0.1:9090 --token-file /etc/sockctl/token
        Exit status: 0 stopped (or --check: valid), 2 bad policy or usage, 3 permission missing.
        """
    )

    @Option(name: .customLong("config"), help: "Policy file (YAML) to run.")
    var config: String?
    @Option(name: .customLong("check"), help: "Validate a policy file and exit: 0 valid, 2 not (with file:line:column).")
    var check: String?
    @Option(name: .customLong("api"), help: "Control API: unix:///PATH (default unix:///run/sockctl.sock) or tcp://HOST:PORT.")
    var api = "unix:///run/sockctl.sock"
    @Option(name: .customLong("token-file"), help: "File holding the bearer token a TCP API requires.")
    var tokenFile: String?
    @Flag(name: .customLong("audit"), help: "Audit every rule: log what would be destroyed, destroy nothing.")
    var audit = false
    @Option(name: .customLong("rescan"), help: "Scan for new or deleted namespaces this often (besides /run/netns changes).")
    var rescan = "5s"
    @Flag(name: .customLong("preload-bpf"), inversion: .prefixedNo,
          help: "Load the BPF destroy programs at start so that kills in one namespace (events) use them; netlink when the kernel or libbpf cannot.")
    var preloadBpf = true
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    func validate() throws {
        if check == nil && config == nil { throw ValidationError("give --config FILE to run, or --check FILE to validate") }
        if check != nil && config != nil { throw ValidationError("--check and --config cannot be combined") }
        if Logger.Level(rawValue: logLevel) == nil { throw ValidationError("--log-level: unknown level '\(logLevel)'") }
    }

    func run() throws {
        if let check {
            do {
                let p = try PolicyLoader.load(path: check)
                print("\(check): ok, \(p.rules.count) rule\(p.rules.count == 1 ? "" : "s")")
                return
            } catch let e as PolicyError {
                FileHandleStderr.write("sockctl: \(e)\n")
                throw ExitCode(Exit.usage)
            }
        }
        let level = Logger.Level(rawValue: logLevel)!
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        let logger = Logger(label: "sockctl.daemon")
        var token: String?
        if let tokenFile {
            guard let t = try? String(contentsOfFile: tokenFile, encoding: .utf8) else {
                FileHandleStderr.write("sockctl: --token-file \(tokenFile): cannot be read\n")
                throw ExitCode(Exit.usage)
            }
            token = t.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let endpoint: APIEndpoint
        do { endpoint = try APIEndpoint.parse(api, token: token) } catch {
            FileHandleStderr.write("sockctl: \(error)\n")
            throw ExitCode(Exit.usage)
        }
        guard let period = try? DurationParser.parse(rescan, option: "--rescan"), period > 0 else {
            FileHandleStderr.write("sockctl: --rescan: '\(rescan)' is not a duration (e.g. 5s)\n")
            throw ExitCode(Exit.usage)
        }
        var options = PolicyEngine.Options(configPath: config!)
        options.auditAll = audit
        options.rescanInterval = period
        options.preloadBPF = preloadBpf
        let conf = DaemonConfiguration(engine: options, endpoint: endpoint)
        let done = DispatchSemaphore(value: 0)
        let box = ErrorBox()
        Task.detached {
            do { try await Daemon.run(conf, logger: logger) } catch { box.error = error }
            done.signal()
        }
        done.wait()
        if let e = box.error {
            if let p = e as? PolicyError {
                FileHandleStderr.write("sockctl: \(p)\n")
                throw ExitCode(Exit.usage)
            }
            throw fail(e)
        }
    }
}

private final class ErrorBox: @unchecked Sendable {
    var error: Error?
}
