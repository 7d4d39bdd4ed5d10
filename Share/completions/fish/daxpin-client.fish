function __daxpin-client_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __daxpin-client_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __daxpin-client_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __daxpin-client_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __daxpin-client_parse_tokens -S
    set -l unparsed_tokens (__daxpin-client_tokens -pc)
    switch $unparsed_tokens[1]
    case 'daxpin-client'
        __daxpin-client_parse_subcommand 0 'address=' 'port=' 'source=' 'block-size=' 'queue-depth=' 'offset=' 'blocks=' 'persist-every=' 'persist-method=' 'passes=' 'loop' 'verify' 'static-data' 'malformed' 'seed=' 'log-level=' 'h/help'
        switch $unparsed_tokens[1]
        case 'help'
            __daxpin-client_parse_subcommand -r 1 
        end
    end
end

function __daxpin-client_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __daxpin-client_parse_subcommand -S -a positional_count
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

function __daxpin-client_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __daxpin-client_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__daxpin-client_tokens -p)
    if test -z "$(__daxpin-client_tokens -t)"
        set -l index (count (__daxpin-client_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'daxpin-client' -f
complete -c 'daxpin-client' -n '__daxpin-client_should_offer_completions_for_flags_or_options "daxpin-client" address' -l 'address' -d 'Server address.' -rfka ''
complete -c 'daxpin-client' -n '__daxpin-client_should_offer_completions_for_flags_or_options "daxpin-client" port' -l 'port' -d 'Server port.' -rfka ''
complete -c 'daxpin-client' -n '__daxpin-client_should_offer_completions_for_flags_or_options "daxpin-client" source' -l 'source' -d 'Local address to connect from: picks the RDMA device that owns it (default: the route\'s).' -rfka ''
complete -c 'daxpin-client' -n '__daxpin-client_should_offer_completions_for_flags_or_options "daxpin-client" block-size' -l 'block-size' -d 'Bytes per RDMA WRITE/READ.' -rfka ''
complete -c 'daxpin-client' -n '__daxpin-client_should_offer_completions_for_flags_or_options "daxpin-client" queue-depth' -l 'queue-depth' -d 'RDMA operations in flight.' -rfka ''
complete -c 'daxpin-client' -n '__daxpin-client_should_offer_completions_for_flags_or_options "daxpin-client" offset' -l 'offset' -d 'Start of this client\'s range in the export.' -rfka ''
complete -c 'daxpin-client' -n '__daxpin-client_should_offer_completions_for_flags_or_options "daxpin-client" blocks' -l 'blocks' -d 'Blocks to write per pass (default: to the end of the export).' -rfka ''
complete -c 'daxpin-client' -n '__daxpin-client_should_offer_completions_for_flags_or_options "daxpin-client" persist-every' -l 'persist-every' -d 'Ask for durability every this many blocks.' -rfka ''
complete -c 'daxpin-client' -n '__daxpin-client_should_offer_completions_for_flags_or_options "daxpin-client" persist-method' -l 'persist-method' -d 'How a batch is made durable: flush (a native RDMA FLUSH after the WRITEs; the server must offer it), send (ask the server to flush), read (an RDMA READ after the WRITEs; the server must advertise direct-write-to-pmem), auto (flush if both ends and the device offer it, else read if the server advertises direct-write-to-pmem, else send).' -rfka 'auto flush send read'
complete -c 'daxpin-client' -n '__daxpin-client_should_offer_completions_for_flags_or_options "daxpin-client" passes' -l 'passes' -d 'Passes over the range.' -rfka ''
complete -c 'daxpin-client' -n '__daxpin-client_should_offer_completions_for_flags_or_options "daxpin-client" loop' -l 'loop' -d 'Keep making passes until stopped (server stop, SIGINT).'
complete -c 'daxpin-client' -n '__daxpin-client_should_offer_completions_for_flags_or_options "daxpin-client" verify' -l 'verify' -d 'Read the range back and compare, then compare the server\'s checksum.'
complete -c 'daxpin-client' -n '__daxpin-client_should_offer_completions_for_flags_or_options "daxpin-client" static-data' -l 'static-data' -d 'Fill each queue slot\'s buffer once instead of before every WRITE (throughput runs: measures the RDMA path, not pattern generation; not with --verify).'
complete -c 'daxpin-client' -n '__daxpin-client_should_offer_completions_for_flags_or_options "daxpin-client" malformed' -l 'malformed' -d 'First send malformed requests and expect each to be rejected.'
complete -c 'daxpin-client' -n '__daxpin-client_should_offer_completions_for_flags_or_options "daxpin-client" seed' -l 'seed' -d 'Pattern seed (default: the client id the server assigns).' -rfka ''
complete -c 'daxpin-client' -n '__daxpin-client_should_offer_completions_for_flags_or_options "daxpin-client" log-level' -l 'log-level' -d 'Log level.' -rfka ''
complete -c 'daxpin-client' -n '__daxpin-client_should_offer_completions_for_flags_or_options "daxpin-client" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'daxpin-client' -n '__daxpin-client_should_offer_completions_for_positional "daxpin-client" -eq 1' -fa 'help' -d 'Show subcommand help information.'
