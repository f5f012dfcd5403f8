# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_sluice_global_optspecs
    string join \n o/output= q/quiet v/verbose data-dir= h/help V/version
end

function __fish_sluice_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_sluice_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_sluice_using_subcommand
    set -l cmd (__fish_sluice_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c sluice -n "__fish_sluice_needs_command" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_needs_command" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_needs_command" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_needs_command" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sluice -n "__fish_sluice_needs_command" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_needs_command" -f -a "sync" -d 'Run one sync now: read a source, write a destination, keep the state'
complete -c sluice -n "__fish_sluice_needs_command" -f -a "connector" -d 'Run one protocol command of a connector, install or pull connectors, list them'
complete -c sluice -n "__fish_sluice_needs_command" -f -a "system" -d 'Housekeeping: remove what crashed runs left behind'
complete -c sluice -n "__fish_sluice_needs_command" -f -a "completions" -d 'Print a completion script for your shell'
complete -c sluice -n "__fish_sluice_needs_command" -f -a "generate-assets" -d 'Writes completions/ and man/ from these definitions (for packagers)'
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l source -d 'The source connector' -r
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l source-config -d 'The source config: a JSON file, or JSON text starting with `{`' -r
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l destination -d 'The destination connector' -r
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l destination-config -d 'The destination config: a JSON file, or JSON text starting with `{`' -r
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l streams -d 'Only these streams (comma-separated names, or namespace.name)' -r
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l sync-mode -d 'How to read the streams' -r -f -a "full-refresh\t''
incremental\t''"
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l destination-sync-mode -d 'How to write them [default: overwrite for full_refresh, append for incremental]' -r -f -a "overwrite\t''
append\t''
append-dedup\t''"
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l state -d 'A state file: read at start if it exists, rewritten after every committed checkpoint (Airbyte\'s --state format)' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l catalog -d 'A configured catalog to use instead of discovering the source' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l namespace -d 'Where streams land: source, destination, or custom:NAME (${SOURCE_NAMESPACE} in NAME is replaced)' -r
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l prefix -d 'A prefix for every stream name in the destination' -r
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l max-line-size -d 'The longest protocol line accepted, in bytes; longer fails the sync' -r
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l log-file -d 'Write the sync\'s log here instead of the data directory' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l pull -d 'When to pull a Docker connector\'s image [env: SLUICE_DOCKER_PULL] [default: missing]' -r -f -a "always\t'Before the first use in each run'
missing\t'When the engine does not have the image'
never\t'Never; a missing image is an error'"
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l memory -d 'The memory limit of each connector container, e.g. 512m or 2g [env: SLUICE_DOCKER_MEMORY] [default: 2g]' -r
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l cpus -d 'The CPUs each connector container may use, e.g. 0.5 [env: SLUICE_DOCKER_CPUS] [default: 2]' -r
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l network -d 'The Docker network connector containers join, to reach a database in another container [env: SLUICE_DOCKER_NETWORK] [default: bridge]' -r
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l local-root -d 'A host directory mounted at /local in connector containers, where file destinations write [env: SLUICE_DOCKER_LOCAL_ROOT]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand sync" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand sync" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand sync" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand sync" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sluice -n "__fish_sluice_using_subcommand sync" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and not __fish_seen_subcommand_from spec check discover read write install pull list" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand connector; and not __fish_seen_subcommand_from spec check discover read write install pull list" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connector; and not __fish_seen_subcommand_from spec check discover read write install pull list" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and not __fish_seen_subcommand_from spec check discover read write install pull list" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and not __fish_seen_subcommand_from spec check discover read write install pull list" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and not __fish_seen_subcommand_from spec check discover read write install pull list" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and not __fish_seen_subcommand_from spec check discover read write install pull list" -f -a "spec" -d 'Show the config a connector takes (its spec)'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and not __fish_seen_subcommand_from spec check discover read write install pull list" -f -a "check" -d 'Check a config works (check) or list a source\'s streams (discover)'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and not __fish_seen_subcommand_from spec check discover read write install pull list" -f -a "discover" -d 'Check a config works (check) or list a source\'s streams (discover)'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and not __fish_seen_subcommand_from spec check discover read write install pull list" -f -a "read" -d 'Run a source\'s read and print its raw protocol messages'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and not __fish_seen_subcommand_from spec check discover read write install pull list" -f -a "write" -d 'Run a destination\'s write with protocol messages from stdin; print what it emits'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and not __fish_seen_subcommand_from spec check discover read write install pull list" -f -a "install" -d 'Install a connector now (Python connectors are otherwise installed on first use; Docker images are pulled unless the engine has them)'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and not __fish_seen_subcommand_from spec check discover read write install pull list" -f -a "pull" -d 'Pull a Docker connector\'s image now, even when the engine has it'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and not __fish_seen_subcommand_from spec check discover read write install pull list" -f -a "list" -d 'List built-in and installed connectors'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from spec" -l pull -d 'When to pull a Docker connector\'s image [env: SLUICE_DOCKER_PULL] [default: missing]' -r -f -a "always\t'Before the first use in each run'
missing\t'When the engine does not have the image'
never\t'Never; a missing image is an error'"
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from spec" -l memory -d 'The memory limit of each connector container, e.g. 512m or 2g [env: SLUICE_DOCKER_MEMORY] [default: 2g]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from spec" -l cpus -d 'The CPUs each connector container may use, e.g. 0.5 [env: SLUICE_DOCKER_CPUS] [default: 2]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from spec" -l network -d 'The Docker network connector containers join, to reach a database in another container [env: SLUICE_DOCKER_NETWORK] [default: bridge]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from spec" -l local-root -d 'A host directory mounted at /local in connector containers, where file destinations write [env: SLUICE_DOCKER_LOCAL_ROOT]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from spec" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from spec" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from spec" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from spec" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from spec" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from spec" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from check" -l config -d 'Its config: a JSON file, or JSON text starting with `{`' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from check" -l pull -d 'When to pull a Docker connector\'s image [env: SLUICE_DOCKER_PULL] [default: missing]' -r -f -a "always\t'Before the first use in each run'
missing\t'When the engine does not have the image'
never\t'Never; a missing image is an error'"
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from check" -l memory -d 'The memory limit of each connector container, e.g. 512m or 2g [env: SLUICE_DOCKER_MEMORY] [default: 2g]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from check" -l cpus -d 'The CPUs each connector container may use, e.g. 0.5 [env: SLUICE_DOCKER_CPUS] [default: 2]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from check" -l network -d 'The Docker network connector containers join, to reach a database in another container [env: SLUICE_DOCKER_NETWORK] [default: bridge]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from check" -l local-root -d 'A host directory mounted at /local in connector containers, where file destinations write [env: SLUICE_DOCKER_LOCAL_ROOT]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from check" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from check" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from check" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from check" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from check" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from discover" -l config -d 'Its config: a JSON file, or JSON text starting with `{`' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from discover" -l pull -d 'When to pull a Docker connector\'s image [env: SLUICE_DOCKER_PULL] [default: missing]' -r -f -a "always\t'Before the first use in each run'
missing\t'When the engine does not have the image'
never\t'Never; a missing image is an error'"
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from discover" -l memory -d 'The memory limit of each connector container, e.g. 512m or 2g [env: SLUICE_DOCKER_MEMORY] [default: 2g]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from discover" -l cpus -d 'The CPUs each connector container may use, e.g. 0.5 [env: SLUICE_DOCKER_CPUS] [default: 2]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from discover" -l network -d 'The Docker network connector containers join, to reach a database in another container [env: SLUICE_DOCKER_NETWORK] [default: bridge]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from discover" -l local-root -d 'A host directory mounted at /local in connector containers, where file destinations write [env: SLUICE_DOCKER_LOCAL_ROOT]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from discover" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from discover" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from discover" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from discover" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from discover" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from discover" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from read" -l config -d 'Its config: a JSON file, or JSON text starting with `{`' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from read" -l catalog -d 'A configured catalog [default: every stream, full refresh]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from read" -l state -d 'A state file to resume from' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from read" -l pull -d 'When to pull a Docker connector\'s image [env: SLUICE_DOCKER_PULL] [default: missing]' -r -f -a "always\t'Before the first use in each run'
missing\t'When the engine does not have the image'
never\t'Never; a missing image is an error'"
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from read" -l memory -d 'The memory limit of each connector container, e.g. 512m or 2g [env: SLUICE_DOCKER_MEMORY] [default: 2g]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from read" -l cpus -d 'The CPUs each connector container may use, e.g. 0.5 [env: SLUICE_DOCKER_CPUS] [default: 2]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from read" -l network -d 'The Docker network connector containers join, to reach a database in another container [env: SLUICE_DOCKER_NETWORK] [default: bridge]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from read" -l local-root -d 'A host directory mounted at /local in connector containers, where file destinations write [env: SLUICE_DOCKER_LOCAL_ROOT]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from read" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from read" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from read" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from read" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from read" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from read" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from write" -l config -d 'Its config: a JSON file, or JSON text starting with `{`' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from write" -l catalog -d 'The configured catalog the messages belong to' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from write" -l pull -d 'When to pull a Docker connector\'s image [env: SLUICE_DOCKER_PULL] [default: missing]' -r -f -a "always\t'Before the first use in each run'
missing\t'When the engine does not have the image'
never\t'Never; a missing image is an error'"
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from write" -l memory -d 'The memory limit of each connector container, e.g. 512m or 2g [env: SLUICE_DOCKER_MEMORY] [default: 2g]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from write" -l cpus -d 'The CPUs each connector container may use, e.g. 0.5 [env: SLUICE_DOCKER_CPUS] [default: 2]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from write" -l network -d 'The Docker network connector containers join, to reach a database in another container [env: SLUICE_DOCKER_NETWORK] [default: bridge]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from write" -l local-root -d 'A host directory mounted at /local in connector containers, where file destinations write [env: SLUICE_DOCKER_LOCAL_ROOT]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from write" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from write" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from write" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from write" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from write" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from write" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from install" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from install" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from install" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from install" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from install" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from install" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from pull" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from pull" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from pull" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from pull" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from pull" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from pull" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from list" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from list" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand system; and not __fish_seen_subcommand_from sweep" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand system; and not __fish_seen_subcommand_from sweep" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand system; and not __fish_seen_subcommand_from sweep" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand system; and not __fish_seen_subcommand_from sweep" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand system; and not __fish_seen_subcommand_from sweep" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand system; and not __fish_seen_subcommand_from sweep" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand system; and not __fish_seen_subcommand_from sweep" -f -a "sweep" -d 'Remove connector containers left behind: those that exited, and those whose sluice process is gone (killed, crashed, or the machine rebooted)'
complete -c sluice -n "__fish_sluice_using_subcommand system; and __fish_seen_subcommand_from sweep" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand system; and __fish_seen_subcommand_from sweep" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand system; and __fish_seen_subcommand_from sweep" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand system; and __fish_seen_subcommand_from sweep" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand system; and __fish_seen_subcommand_from sweep" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand system; and __fish_seen_subcommand_from sweep" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand completions" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand completions" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand completions" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand completions" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand completions" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand completions" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand generate-assets" -l root -d 'The directory holding completions/ and man/' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand generate-assets" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand generate-assets" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand generate-assets" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand generate-assets" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand generate-assets" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand generate-assets" -s V -l version -d 'Print version'
