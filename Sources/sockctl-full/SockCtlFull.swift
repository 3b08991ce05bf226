import ArgumentParser
import SockCtlCLIBase

/// `sockctl-full`: the verbs with heavy dependencies (supervisor, fd passing, SYN fingerprinting,
/// policy daemon). Users run them as `sockctl VERB`; sockctl execs this binary for them (see
/// `FullVerb`). list, kill, watch and netns live in `sockctl` itself.
@main
struct SockCtlFull: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sockctl",
        abstract: "See, kill, hand off and fingerprint live Linux sockets (the verbs sockctl runs through sockctl-full).",
        discussion: "list, kill, watch and netns are in sockctl itself.",
        subcommands: SockCtlFull.allSubcommands
    )

    /// Keep one entry per line so that parallel work merges cleanly; each verb also needs its
    /// case in FullVerb.
    static let allSubcommands: [ParsableCommand.Type] = [
        Run.self,
        Upgrade.self,
        Status.self,
        FD.self,
        SynCommand.self,
        DaemonCommand.self,
    ]
}
