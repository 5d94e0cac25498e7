#!/usr/bin/env bash
# Kaldi-style option parsing, sourced by recipes after they set their defaults:
#   stage=0; nj=2; . ../TEMPLATE/parse_options.sh
# `--some-option VALUE` (or `--some-option=VALUE`) sets the existing variable some_option. An option whose
# variable the recipe did not define is an error, so a typo never silently runs with a default.
# `--help` prints the options with their current values. Positional arguments stay in "$@".

_usage_vars=$(compgen -v | tr '\n' ' ')
while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      echo "Usage: $0 [options]"
      grep -E '^[a-z_]+=' "$0" | sed -E 's/^([a-z_]+)=.*/\1/' | sort -u | while read -r v; do
        printf '  --%s (current: %s)\n' "${v//_/-}" "${!v}"
      done
      exit 0 ;;
    --*=*) _name=${1%%=*}; _value=${1#*=}; shift ;;
    --*)
      _name=$1
      if [ $# -lt 2 ]; then echo "$0: option $1 needs a value" >&2; exit 1; fi
      _value=$2; shift 2 ;;
    *) break ;;
  esac
  _var=${_name#--}; _var=${_var//-/_}
  case " $_usage_vars " in
    *" $_var "*) printf -v "$_var" '%s' "$_value" ;;
    *) echo "$0: unknown option $_name (see $0 --help)" >&2; exit 1 ;;
  esac
done
unset _name _value _var _usage_vars
