#!/usr/bin/env bash
# A fuzzing campaign: every target (or the ones named) for a fixed number of executions, one
# after the other, each in one libFuzzer process (-jobs=1), from its seed corpus in
# fuzz/corpus/TARGET/. Writes a markdown report of runs, seconds, coverage, corpus size and
# crashes per target. Outside CI: it needs the nightly toolchain and cargo-fuzz
# (`cargo install --locked cargo-fuzz`) and, at the default, hours.
#
# Usage: fuzz/campaign.sh [--runs N] [--max-time SECONDS] [--out DIR] [TARGET...]
#   --runs N           executions per target (env FUZZ_RUNS; default 10000000)
#   --max-time SECONDS stop a target after this many seconds even if short of its runs
#                      (env FUZZ_MAX_TIME; default none): for a campaign that must fit a budget,
#                      the report then says how many runs were done
#   --out DIR          where the work corpora, logs, artifacts and report.md go
#                      (default fuzz/campaign/DATE, which git ignores)
#
# New inputs go to DIR/corpus/TARGET, never to the committed seed corpus. A crash leaves its
# input in DIR/artifacts/TARGET/; reproduce it with
#   cargo +nightly fuzz run -O TARGET DIR/artifacts/TARGET/crash-...
# and keep it as fuzz/regressions/TARGET/NAME, which `cargo test --test formats` replays.
# Run it niced on a shared machine: nice -n 10 fuzz/campaign.sh --runs 1000000
set -euo pipefail

fuzz="$(cd "$(dirname "$0")" && pwd)"
runs="${FUZZ_RUNS:-10000000}"
max_time="${FUZZ_MAX_TIME:-0}"
out=""
targets=()
while (($#)); do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --max-time) max_time="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "campaign.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[[ $runs =~ ^[0-9]+$ ]] || { echo "campaign.sh: --runs takes a number" >&2; exit 2; }
[[ $max_time =~ ^[0-9]+$ ]] || { echo "campaign.sh: --max-time takes seconds" >&2; exit 2; }
out="${out:-$fuzz/campaign/$(date -u +%Y%m%dT%H%M%SZ)}"
named=${#targets[@]}
if ((named == 0)); then
  mapfile -t targets < <(sed -n 's/^name = "\(.*\)"$/\1/p' "$fuzz/Cargo.toml" | grep -v '^cashmatch-fuzz$')
fi

# The same build as `cargo +nightly fuzz run -O TARGET` (AddressSanitizer, coverage), of all
# targets at once or of the ones named; the binaries are then run directly, to choose their
# working directory.
if ((named)); then
  for t in "${targets[@]}"; do (cd "$fuzz/.." && cargo +nightly fuzz build -O "$t"); done
else
  (cd "$fuzz/.." && cargo +nightly fuzz build -O)
fi
triple="$(rustc +nightly -vV | sed -n 's/^host: //p')"
bin_dir="$fuzz/target/$triple/release"

mkdir -p "$out"
out="$(cd "$out" && pwd)"
report="$out/report.md"
commit="$(git -C "$fuzz" rev-parse --short HEAD 2>/dev/null || echo unknown)"
{
  echo "# Fuzzing campaign $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "Commit $commit; \`fuzz/campaign.sh --runs $runs$( ((max_time > 0)) && echo " --max-time $max_time")\`;" \
    "one libFuzzer process a target (-jobs=1), from fuzz/corpus/TARGET/; $(nproc) cores."
  echo
  echo "| target | runs | seconds | cov | ft | corpus (files) | crashes |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | --- |"
} >"$report"

status=0
for t in "${targets[@]}"; do
  work="$out/corpus/$t" art="$out/artifacts/$t/" logdir="$out/logs/$t"
  mkdir -p "$work" "$art" "$logdir"
  seeds="$fuzz/corpus/$t"
  [[ -d $seeds ]] || seeds=""
  args=(-runs="$runs" -jobs=1 -artifact_prefix="$art" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1)
  ((max_time > 0)) && args+=(-max_total_time="$max_time")
  echo "campaign.sh: $t: ${args[*]}" >&2
  start=$(date +%s)
  # With -jobs=1 libFuzzer runs one worker and sends its output to fuzz-0.log in the current
  # directory, hence the cd.
  (cd "$logdir" && "$bin_dir/$t" "${args[@]}" "$work" $seeds >launcher.log 2>&1) || true
  secs=$(($(date +%s) - start))
  log="$logdir/fuzz-0.log"
  [[ -f $log ]] || log="$logdir/launcher.log"
  done_line="$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -1 || true)"
  last="$(grep -E '^#[0-9]+' "$log" | grep 'cov:' | tail -1 || true)"
  stat_runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  done_runs="$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' <<<"$done_line")"
  last_runs="$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")"
  n_runs="${stat_runs:-${done_runs:-${last_runs:-?}}}"
  cov="$(grep -o 'cov: [0-9]*' <<<"$last" | cut -d' ' -f2)"
  ft="$(grep -o 'ft: [0-9]*' <<<"$last" | cut -d' ' -f2)"
  corp="$(find "$work" -type f | wc -l)"
  [[ -n $seeds ]] && corp="$corp (+$(find "$seeds" -type f ! -name '.*' | wc -l) seeds)"
  crashes="$(find "$art" -type f -printf '%p\n' | sed "s|^$out/||" | paste -sd' ' -)"
  [[ -n $crashes ]] && status=1
  printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$t" "$n_runs" "$secs" "${cov:-?}" "${ft:-?}" \
    "$corp" "${crashes:-none}" >>"$report"
done

{
  echo
  echo "runs: executions done (libFuzzer's final stats); seconds: wall clock; cov, ft: the"
  echo "coverage and features of libFuzzer's last status line; corpus: inputs the campaign added"
  echo "beside the seeds; crashes: files under $out/artifacts/."
} >>"$report"
cat "$report"
exit "$status"
