# One trainwrap per rank under torchrun: torchrun --no_python sh per-rank.sh TRAIN_ARGS...
# Each rank gets a run dir of its own (a run dir is locked by its supervisor), named for
# its global rank; every rank supervises the train.py next to this script.
exec trainwrap run --state-dir "sd-$RANK" --pty never --skip-preflight \
  --progress-regex '^rank [0-9]+ step ([0-9]+) ' --stall-timeout 60s \
  -- python3 "$(dirname "$0")/train.py" "$@"
