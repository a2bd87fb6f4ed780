#!/usr/bin/env bash
# Builds the seed corpus of every fuzz target, fuzz/corpus/TARGET/, from the files in fixtures/
# that the target reads. Only fixtures/ is used: its third-party files are MIT, BSD or
# Apache-2.0 (fixtures/SOURCES.md), the rest are the project's own. Files over SEED_MAX_BYTES
# (16 KiB unless set) are left out, because libFuzzer takes its input length limit from the
# largest seed and long inputs slow every run; fixtures/x12/regressions/ and the like are
# regression inputs, replayed from where they are, not seeds.
#
# Usage: fuzz/seed.sh            (rewrites fuzz/corpus/; commit what it writes)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
fx="$root/fixtures"
out="$root/fuzz/corpus"
max="${SEED_MAX_BYTES:-16384}"

# target: the fixture files it reads (globs under fixtures/).
declare -A seeds=(
  [bai2]="bai2/*"
  [bank_csv]="bank_csv/*.csv advices/bank.csv"
  [camt]="camt/*.xml"
  [csv]="cases/remittances.csv"
  [email]="advices/mail/*.eml advices/pdf/*.eml"
  [lockbox]="lockbox/*.bai"
  [mt940]="mt940/*"
  [nacha]="nacha/*"
  [pdf]="advices/pdf/*.pdf"
  [remadv]="advices/remadv/*.edi"
  [remt]="remt/*.xml"
  [spreadsheet]="advices/*.xlsx"
  [text]=""
  [x12]="x12/*.x12"
)

rm -rf "$out"
mkdir -p "$out"
# Seeds are kept byte for byte, as the fixtures are.
printf '* -text\n' >"$out/.gitattributes"
for target in "${!seeds[@]}"; do
  mkdir -p "$out/$target"
  for pattern in ${seeds[$target]}; do
    for f in "$fx"/$pattern; do
      [[ -f $f ]] || continue
      case "$(basename "$f")" in .gitattributes | README.md) continue ;; esac
      size=$(stat -c %s "$f")
      if ((size > max)); then
        echo "seed.sh: $target: leaving out ${f#"$root"/} ($size bytes > $max)" >&2
        continue
      fi
      cp "$f" "$out/$target/$(basename "$f")"
    done
  done
done

# The free-text reader reads message bodies: the plain-text advice without its mail headers.
sed '1,/^\r\?$/d' "$fx/advices/mail/bluegrass_text.eml" >"$out/text/bluegrass_text.txt"

for target in $(printf '%s\n' "${!seeds[@]}" | sort); do
  n=$(find "$out/$target" -type f | wc -l)
  ((n > 0)) || { echo "seed.sh: no seed for $target" >&2; exit 1; }
  echo "$target: $n seeds, $(cat "$out/$target"/* | wc -c) bytes"
done
