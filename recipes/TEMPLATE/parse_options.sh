#!/usr/bin/env bash
# Kaldi-style option parsing, sourced by recipes after they set their defaults:
#   stage=0; nj=2; . ../TEMPLATE/parse_options.sh
# `--some-option VALUE` (or `--some-option=VALUE`) sets the existing variable some_option. An option whose
# variable the recipe did not define is an error, so a typo never silently runs with a default.
# `--help` prints the options with their current values. Positional arguments stay in "$@".

# Only variables set at the start of a line (`name=value`) of the recipe, or of the shared script that sources this
# file (TEMPLATE/run.sh), are options: never PATH or HOME.
_recipe=$0
[ -f "$_recipe" ] || _recipe=$(basename "$0")  # recipes cd into their own folder before sourcing this
_usage_vars=$(grep -ohE '^[a-z][a-z0-9_]*=' "$_recipe" "${BASH_SOURCE[1]:-$_recipe}" | tr -d '=' | sort -u | tr '\n' ' ')
while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      echo "Usage: $0 [options]"
      for v in $_usage_vars; do printf '  --%s (current: %s)\n' "${v//_/-}" "${!v}"; done
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
unset _name _value _var _usage_vars _recipe
