function __daxpin-server_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __daxpin-server_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __daxpin-server_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __daxpin-server_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __daxpin-server_parse_tokens -S
    set -l unparsed_tokens (__daxpin-server_tokens -pc)
    switch $unparsed_tokens[1]
    case 'daxpin-server'
        __daxpin-server_parse_subcommand 0 'file=' 'size=' 'address=' 'port=' 'length=' 'quiesce-budget=' 'max-clients=' 'max-export-bytes=' 'log-level=' 'metrics-file=' 'direct-write-to-pmem' 'persist-method=' 'h/help'
        switch $unparsed_tokens[1]
        case 'help'
            __daxpin-server_parse_subcommand -r 1 
        end
    end
end

function __daxpin-server_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __daxpin-server_parse_subcommand -S -a positional_count
    argparse -s r -- $argv
    set -l option_specs $argv[2..]
    set -l is_repeating_positional $_flag_r
    set -el _flag_r
    set -a commands $unparsed_tokens[1]
    set positional_index 0
    while true
        set -e unparsed_tokens[1]
        argparse -sn "$commands" $option_specs -- $unparsed_tokens 2> /dev/null
        set unparsed_tokens $argv
        set positional_index (math $positional_index + 1)
        for non_repeating_flag_or_option in $non_repeating_flags_or_options
            if set -ql "_flag_$(string replace -a - _ -- $non_repeating_flag_or_option)"
                set non_repeating_flags_or_options_absent 1
                break
            end
        end
        test (count $unparsed_tokens) -eq 0 -o \( -z "$is_repeating_positional" -a "$positional_index" -gt "$positional_count" \) && break
    end
end

function __daxpin-server_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __daxpin-server_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__daxpin-server_tokens -p)
    if test -z "$(__daxpin-server_tokens -t)"
        set -l index (count (__daxpin-server_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'daxpin-server' -f
complete -c 'daxpin-server' -n '__daxpin-server_should_offer_completions_for_flags_or_options "daxpin-server" file' -l 'file' -d 'The file to export (tmpfs, fs-dax, page cache or /dev/daxX.Y).' -rfka ''
complete -c 'daxpin-server' -n '__daxpin-server_should_offer_completions_for_flags_or_options "daxpin-server" size' -l 'size' -d 'Create or resize the file to this many bytes first.' -rfka ''
complete -c 'daxpin-server' -n '__daxpin-server_should_offer_completions_for_flags_or_options "daxpin-server" address' -l 'address' -d 'Address of the RDMA interface to listen on.' -rfka ''
complete -c 'daxpin-server' -n '__daxpin-server_should_offer_completions_for_flags_or_options "daxpin-server" port' -l 'port' -d 'Port (0: any free port; the ready line names it).' -rfka ''
complete -c 'daxpin-server' -n '__daxpin-server_should_offer_completions_for_flags_or_options "daxpin-server" length' -l 'length' -d 'Bytes to export from offset 0 (default: the whole file).' -rfka ''
complete -c 'daxpin-server' -n '__daxpin-server_should_offer_completions_for_flags_or_options "daxpin-server" quiesce-budget' -l 'quiesce-budget' -d 'Milliseconds clients get to stop when the lease breaks.' -rfka ''
complete -c 'daxpin-server' -n '__daxpin-server_should_offer_completions_for_flags_or_options "daxpin-server" max-clients' -l 'max-clients' -d 'Most clients served at once.' -rfka ''
complete -c 'daxpin-server' -n '__daxpin-server_should_offer_completions_for_flags_or_options "daxpin-server" max-export-bytes' -l 'max-export-bytes' -d 'Refuse to start when the export would pin more than this many bytes (default: no limit).' -rfka ''
complete -c 'daxpin-server' -n '__daxpin-server_should_offer_completions_for_flags_or_options "daxpin-server" log-level' -l 'log-level' -d 'Log level (trace, debug, info, notice, warning, error).' -rfka ''
complete -c 'daxpin-server' -n '__daxpin-server_should_offer_completions_for_flags_or_options "daxpin-server" metrics-file' -l 'metrics-file' -d 'Keep this file in node_exporter\'s textfile format (*.prom) up to date with the server\'s leases, rewritten atomically on every change.' -rfka ''
complete -c 'daxpin-server' -n '__daxpin-server_should_offer_completions_for_flags_or_options "daxpin-server" direct-write-to-pmem' -l 'direct-write-to-pmem' -d 'Declare that RDMA WRITEs to the export reach the persistence domain once placed, and advertise it to clients, who may then make writes durable with an RDMA READ after them instead of asking this server to flush (--persist-method read).'
complete -c 'daxpin-server' -n '__daxpin-server_should_offer_completions_for_flags_or_options "daxpin-server" persist-method' -l 'persist-method' -d 'Which durability methods to offer besides clients\' persist requests: auto (offer native RDMA FLUSH when the export is persistent memory and this build, the device and the kernel allow it), flush (the same, and refuse to start when FLUSH cannot be offered), send (persist requests only).' -rfka 'auto flush send'
complete -c 'daxpin-server' -n '__daxpin-server_should_offer_completions_for_flags_or_options "daxpin-server" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'daxpin-server' -n '__daxpin-server_should_offer_completions_for_positional "daxpin-server" -eq 1' -fa 'help' -d 'Show subcommand help information.'
