import ArgumentParser
import CLinuxUAPI
import SockCtlCLIBase

@main
struct SockCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sockctl",
        abstract: "See, kill, hand off and fingerprint live Linux sockets.",
        subcommands: SockCtl.allSubcommands
    )

    /// Every verb, one command type each. Keep one entry per line so that parallel work merges
    /// cleanly. The Forwarded entries stand for commands of sockctl-full (FullVerb).
    static let allSubcommands: [ParsableCommand.Type] = [
        List.self,
        Kill.self,
        Watch.self,
        Forwarded<RunVerb>.self,
        Forwarded<UpgradeVerb>.self,
        Forwarded<StatusVerb>.self,
        Forwarded<FDVerb>.self,
        Forwarded<SynVerb>.self,
        Forwarded<DaemonVerb>.self,
        Netns.self,
    ]

    static func main() {
        // The verbs of sockctl-full are handed over before any parsing (same pid, fds, environment).
        FullVerb.forwardIfNeeded(CommandLine.arguments)
        sockctl_keep_freed_memory()
        main(nil)
    }
}

// Entries for `sockctl --help`; invoking them never gets here (main forwards them first), but
// if it did, run() forwards too.
protocol ForwardedVerb { static var verb: FullVerb { get } }
struct Forwarded<Verb: ForwardedVerb>: ParsableCommand {
    static var configuration: CommandConfiguration { Verb.verb.configuration }
    func run() { FullVerb.forwardIfNeeded(["sockctl", Verb.verb.rawValue]) }
}
enum RunVerb: ForwardedVerb { static let verb = FullVerb.run }
enum UpgradeVerb: ForwardedVerb { static let verb = FullVerb.upgrade }
enum StatusVerb: ForwardedVerb { static let verb = FullVerb.status }
enum FDVerb: ForwardedVerb { static let verb = FullVerb.fd }
enum SynVerb: ForwardedVerb { static let verb = FullVerb.syn }
enum DaemonVerb: ForwardedVerb { static let verb = FullVerb.daemon }
