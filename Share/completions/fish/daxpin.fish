function __daxpin_should_offer_completions_for_flags_or_options -a expected_commands
    set -l non_repeating_flags_or_options $argv[2..]
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __daxpin_parse_tokens
    test "$commands" = "$expected_commands"; and return $non_repeating_flags_or_options_absent
end

function __daxpin_should_offer_completions_for_positional -a expected_commands positional_index_comparison expected_positional_index
    set -l non_repeating_flags_or_options
    set -l non_repeating_flags_or_options_absent 0
    set -l positional_index 0
    set -l commands
    __daxpin_parse_tokens
    test "$commands" = "$expected_commands" -a \( "$positional_index" "$positional_index_comparison" "$expected_positional_index" \)
end

function __daxpin_parse_tokens -S
    set -l unparsed_tokens (__daxpin_tokens -pc)
    switch $unparsed_tokens[1]
    case 'daxpin'
        __daxpin_parse_subcommand 0 'h/help'
        switch $unparsed_tokens[1]
        case 'probe'
            __daxpin_parse_subcommand 1 'device=' 'access=' 'policy=' 'json' 'h/help'
        case 'ls'
            __daxpin_parse_subcommand 0 'all' 'no-all' 'json' 'format=' 'watch' 'interval=' 'count=' 'h/help'
        case 'help'
            __daxpin_parse_subcommand -r 1 
        end
    end
end

function __daxpin_tokens
    if test (string split -m 1 -f 1 -- . "$FISH_VERSION") -gt 3
        commandline --tokens-raw $argv
    else
        commandline -o $argv
    end
end

function __daxpin_parse_subcommand -S -a positional_count
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

function __daxpin_complete_directories
    set -l token (commandline -t)
    string match -- '*/' $token
    set -l subdirs $token*/
    printf %s\n $subdirs
end

function __daxpin_custom_completion
    set -x SAP_SHELL fish
    set -x SAP_SHELL_VERSION $FISH_VERSION
    set -l tokens (__daxpin_tokens -p)
    if test -z "$(__daxpin_tokens -t)"
        set -l index (count (__daxpin_tokens -pc))
        set tokens $tokens[..$index] \'\' $tokens[(math $index + 1)..]
    end
    command $tokens[1] $argv $tokens
end

complete -c 'daxpin' -f
complete -c 'daxpin' -n '__daxpin_should_offer_completions_for_flags_or_options "daxpin" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'daxpin' -n '__daxpin_should_offer_completions_for_positional "daxpin" -eq 1' -fa 'probe' -d 'Report what pinning a file for RDMA would do, without pinning it.'
complete -c 'daxpin' -n '__daxpin_should_offer_completions_for_positional "daxpin" -eq 1' -fa 'ls' -d 'List the long-term pins and leases on this machine.'
complete -c 'daxpin' -n '__daxpin_should_offer_completions_for_positional "daxpin" -eq 1' -fa 'help' -d 'Show subcommand help information.'
complete -c 'daxpin' -n '__daxpin_should_offer_completions_for_flags_or_options "daxpin probe" device' -l 'device' -d 'The RDMA device (default: the first one present).' -rfka ''
complete -c 'daxpin' -n '__daxpin_should_offer_completions_for_flags_or_options "daxpin probe" access' -l 'access' -d 'How peers would use the memory.' -rfka 'read read-write'
complete -c 'daxpin' -n '__daxpin_should_offer_completions_for_flags_or_options "daxpin probe" policy' -l 'policy' -d 'The strategy policy to forecast: auto may stage (copy); zero-copy refuses instead.' -rfka 'auto zero-copy'
complete -c 'daxpin' -n '__daxpin_should_offer_completions_for_flags_or_options "daxpin probe" json' -l 'json' -d 'Print JSON (schema in README.md).'
complete -c 'daxpin' -n '__daxpin_should_offer_completions_for_flags_or_options "daxpin probe" h help' -s 'h' -l 'help' -d 'Show help information.'
complete -c 'daxpin' -n '__daxpin_should_offer_completions_for_flags_or_options "daxpin ls" all' -l 'all' -d 'Every process holding long-term pins, not only DaxPin\'s (default: on for root, off otherwise).'
complete -c 'daxpin' -n '__daxpin_should_offer_completions_for_flags_or_options "daxpin ls" no-all' -l 'no-all' -d 'Every process holding long-term pins, not only DaxPin\'s (default: on for root, off otherwise).'
complete -c 'daxpin' -n '__daxpin_should_offer_completions_for_flags_or_options "daxpin ls" json' -l 'json' -d 'Print JSON (schema in the DocC article TheDaxpinCommand.md); with --watch, one document per line. Same as --format json.'
complete -c 'daxpin' -n '__daxpin_should_offer_completions_for_flags_or_options "daxpin ls" format' -l 'format' -d 'table, json, or prometheus (node_exporter\'s textfile format; one snapshot, not with --watch).' -rfka 'table json prometheus'
complete -c 'daxpin' -n '__daxpin_should_offer_completions_for_flags_or_options "daxpin ls" watch' -l 'watch' -d 'Refresh like top.'
complete -c 'daxpin' -n '__daxpin_should_offer_completions_for_flags_or_options "daxpin ls" interval' -l 'interval' -d 'Seconds between refreshes with --watch.' -rfka ''
complete -c 'daxpin' -n '__daxpin_should_offer_completions_for_flags_or_options "daxpin ls" count' -l 'count' -d 'Stop after this many refreshes with --watch (default: until interrupted).' -rfka ''
complete -c 'daxpin' -n '__daxpin_should_offer_completions_for_flags_or_options "daxpin ls" h help' -s 'h' -l 'help' -d 'Show help information.'
