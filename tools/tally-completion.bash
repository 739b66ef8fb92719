# Bash completion for tally(1). Source it (`. tools/tally-completion.bash`) or install it
# as /etc/bash_completion.d/tally. Topic and group names are completed by asking the
# cluster (tally topic list / group list, 2 s timeout), using -b or TALLY_BROKERS.

# shellcheck disable=SC2207 # COMPREPLY=($(compgen ...)) is the completion idiom
_tally_brokers_args()
{
	local i
	for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
		case ${COMP_WORDS[i]} in
		-b | --brokers) printf -- '-b %s' "${COMP_WORDS[i + 1]}" ;;
		--brokers=*) printf -- '%s' "${COMP_WORDS[i]}" ;;
		esac
	done
}

_tally_names()
{
	# shellcheck disable=SC2046
	tally $(_tally_brokers_args) --timeout 2s --color never "$1" list 2>/dev/null |
		awk 'NR > 1 { print $1 }'
}

_tally()
{
	local cur prev noun verb i
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD - 1]}
	local globals="-b --brokers -X --format --color --timeout -q --quiet -v --verbose -h --help --version"
	noun=
	verb=
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		-b | --brokers | -X | --format | --color | --timeout) ((i++)) ;;
		-*) ;;
		*)
			if [ -z "$noun" ]; then
				noun=${COMP_WORDS[i]}
			elif [ -z "$verb" ]; then
				verb=${COMP_WORDS[i]}
			fi
			;;
		esac
	done
	case $prev in
	--format)
		COMPREPLY=($(compgen -W "text json yaml" -- "$cur"))
		return
		;;
	--color)
		COMPREPLY=($(compgen -W "auto always never" -- "$cur"))
		return
		;;
	-E | --encoding)
		COMPREPLY=($(compgen -W "raw hex base64 escape" -- "$cur"))
		return
		;;
	-z | --compression)
		COMPREPLY=($(compgen -W "none gzip snappy lz4 zstd" -- "$cur"))
		return
		;;
	--acks)
		COMPREPLY=($(compgen -W "all 1 0" -- "$cur"))
		return
		;;
	-o | --offset)
		COMPREPLY=($(compgen -W "beginning end 0:end :end @-1h @-10m" -- "$cur"))
		return
		;;
	-g | --group)
		COMPREPLY=($(compgen -W "$(_tally_names group)" -- "$cur"))
		return
		;;
	-t | --topic)
		COMPREPLY=($(compgen -W "$(_tally_names topic)" -- "$cur"))
		return
		;;
	-b | --brokers | -X | --timeout | -k | -K | -H | -p | -n | -f | -D | --txn-id | --txn-every | --shift | --older-than | --partition | --producer-id | --producer-epoch | --coordinator-epoch | --transactional-id | -c | -r)
		return
		;;
	esac
	if [ -z "$noun" ]; then
		COMPREPLY=($(compgen -W "topic produce tail group txn cluster quota acl user log top help $globals" -- "$cur"))
		return
	fi
	local opts=
	case $noun in
	topic)
		[ -z "$verb" ] && { COMPREPLY=($(compgen -W "create list describe delete add-partitions alter delete-records" -- "$cur")); return; }
		opts="-p --partitions -r --replication-factor -c --config --if-exists --if-not-exists --internal --delete-config"
		case $verb in describe | delete | add-partitions | alter | delete-records)
			[[ $cur != -* ]] && { COMPREPLY=($(compgen -W "$(_tally_names topic)" -- "$cur")); return; } ;;
		esac
		;;
	produce)
		opts="-k --key -K --key-delimiter -H --header -p --partition -D --delimiter --json --ignore-partition --acks -z --compression --no-idempotence --txn-id --txn-every --rate --no-rate"
		[ -z "$verb" ] && [[ $cur != -* ]] && { COMPREPLY=($(compgen -W "$(_tally_names topic)" -- "$cur")); return; }
		;;
	tail | consume)
		opts="-o --offset -e --exit -n --count -p --partitions -g --group -f --fmt -K --key-delimiter -E --encoding --json --read-uncommitted --show-control --rate --no-rate"
		[[ $cur != -* ]] && { COMPREPLY=($(compgen -W "$(_tally_names topic)" -- "$cur")); return; }
		;;
	group)
		[ -z "$verb" ] && { COMPREPLY=($(compgen -W "list describe seek delete" -- "$cur")); return; }
		opts="-o --offset -t --topic --shift --execute"
		[[ $cur != -* ]] && [ "$verb" != list ] && { COMPREPLY=($(compgen -W "$(_tally_names group)" -- "$cur")); return; }
		;;
	txn)
		[ -z "$verb" ] && { COMPREPLY=($(compgen -W "list describe producers find-hanging abort" -- "$cur")); return; }
		opts="-p --partitions --older-than --transactional-id --topic --partition --producer-id --producer-epoch --coordinator-epoch"
		case $verb in producers | find-hanging)
			[[ $cur != -* ]] && { COMPREPLY=($(compgen -W "$(_tally_names topic)" -- "$cur")); return; } ;;
		esac
		;;
	cluster)
		[ -z "$verb" ] && { COMPREPLY=($(compgen -W "info log-dirs" -- "$cur")); return; }
		;;
	quota | quotas)
		[ -z "$verb" ] && { COMPREPLY=($(compgen -W "set list delete" -- "$cur")); return; }
		opts="--user --user-default --client-id --client-id-default"
		[[ $cur != -* ]] && [ "$verb" != list ] && { COMPREPLY=($(compgen -W "producer_byte_rate= consumer_byte_rate= request_percentage= controller_mutation_rate=" -- "$cur")); compopt -o nospace 2>/dev/null; return; }
		;;
	acl | acls)
		[ -z "$verb" ] && { COMPREPLY=($(compgen -W "add list remove" -- "$cur")); return; }
		opts="--allow-principal --deny-principal --allow-host --deny-host --operation --topic --group --transactional-id --cluster --resource-pattern-type --principal --force"
		;;
	user | users)
		[ -z "$verb" ] && { COMPREPLY=($(compgen -W "create delete list" -- "$cur")); return; }
		opts="--mechanism --iterations --password"
		;;
	log)
		[ -z "$verb" ] && { COMPREPLY=($(compgen -W "dump check" -- "$cur")); return; }
		opts="--records --json"
		[[ $cur != -* ]] && { COMPREPLY=($(compgen -f -- "$cur")); return; }
		;;
	top)
		opts="-m --metrics -i --interval --once"
		;;
	help)
		COMPREPLY=($(compgen -W "topic produce tail group txn cluster quota acl user log top" -- "$cur"))
		return
		;;
	esac
	COMPREPLY=($(compgen -W "$opts $globals" -- "$cur"))
}

complete -o default -F _tally tally
