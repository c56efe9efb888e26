package shim

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/trainwrap/trainwrap/classify"
	"github.com/trainwrap/trainwrap/rundir"
)

// RecoveryOptions turn on smart recovery (see Adjust) and say where the job's batch
// size, gradient accumulation and DataLoader workers live: a flag of the command
// (BatchArg, ...) or a key of a job config file (BatchKey, ... in JobConfigs). The
// zero value is off.
type RecoveryOptions struct {
	// On turns recovery on for the environment-only steps; naming any knob turns it
	// on too.
	On bool

	BatchArg, GradAccumArg, WorkersArg string
	BatchKey, GradAccumKey, WorkersKey string
	// JobConfigs are searched in order for the keys; the command must name the file
	// that holds one, since the next attempt gets a rewritten copy in its place.
	JobConfigs []string
	// MinBatch is the smallest batch recovery lowers to; under 1 means 1.
	MinBatch int
}

// Enabled reports whether the options ask for smart recovery at all.
func (o RecoveryOptions) Enabled() bool {
	return o.On || o.BatchArg != "" || o.GradAccumArg != "" || o.WorkersArg != "" ||
		o.BatchKey != "" || o.GradAccumKey != "" || o.WorkersKey != ""
}

// recovery is smart recovery across the attempts of one run: where each knob lives,
// its value at the start and now, and the rewritten config copies.
type recovery struct {
	o        RecoveryOptions
	names    TuningNames
	initial  Tuning
	cur      Tuning
	keyFile  [3]string         // the config file holding the batch, accumulation, workers key
	copies   map[string]string // user's config file → the copy the next attempt gets
	workDir  string
	stateDir string
	userSet  func(string) bool
}

// newRecovery reads the knobs' starting values from the command and the configs. It
// returns nil when recovery is off, notes for the user (a knob that cannot be
// changed), and an error naming the flag at fault when the options cannot work.
func newRecovery(o RecoveryOptions, argv []string, workDir, stateDir string) (*recovery, []string, error) {
	if !o.Enabled() {
		return nil, nil, nil
	}
	if o.MinBatch < 1 {
		o.MinBatch = 1
	}
	r := &recovery{o: o, workDir: workDir, stateDir: stateDir, copies: map[string]string{},
		userSet: func(k string) bool { return os.Getenv(k) != "" }}
	var notes []string
	type spec struct {
		arg, key, argFlag, keyFlag string
		absent                     int // the value when the command does not say
		name                       *Knob
		value                      *int
	}
	specs := []spec{
		{o.BatchArg, o.BatchKey, "--batch-arg", "--batch-key", -1, &r.names.Batch, &r.initial.Batch},
		// Absent, gradient accumulation is 1: every trainer's default.
		{o.GradAccumArg, o.GradAccumKey, "--grad-accum-arg", "--grad-accum-key", 1, &r.names.GradAccum, &r.initial.GradAccum},
		{o.WorkersArg, o.WorkersKey, "--workers-arg", "--workers-key", -1, &r.names.Workers, &r.initial.Workers},
	}
	for i, sp := range specs {
		*sp.value = -1
		switch {
		case sp.arg != "" && sp.key != "":
			return nil, nil, fmt.Errorf("%s and %s: give one of them, not both", sp.argFlag, sp.keyFlag)
		case sp.arg != "":
			*sp.name = Knob{Kind: rundir.AdjustArg, Name: sp.arg}
			v, ok, err := argInt(argv, sp.arg)
			switch {
			case err != nil:
				return nil, nil, fmt.Errorf("%s %s: %w", sp.argFlag, sp.arg, err)
			case ok:
				*sp.value = v
			case sp.absent >= 0:
				*sp.value = sp.absent
			default:
				notes = append(notes, fmt.Sprintf("smart recovery: the command has no %s, so it cannot be changed; give it in the command", sp.arg))
			}
		case sp.key != "":
			*sp.name = Knob{Kind: rundir.AdjustConfig, Name: sp.key}
			file, v, err := r.findKey(sp.key)
			if err != nil {
				return nil, nil, fmt.Errorf("%s %s: %w", sp.keyFlag, sp.key, err)
			}
			if !namesFile(argv, file, workDir) {
				return nil, nil, fmt.Errorf("%s %s: the command does not name %s; trainwrap passes a rewritten copy in its place, so the command must name the file", sp.keyFlag, sp.key, file)
			}
			r.keyFile[i] = file
			*sp.value = v
		}
	}
	if r.initial.Batch >= 0 && r.initial.Batch < o.MinBatch {
		notes = append(notes, fmt.Sprintf("smart recovery: the batch %d is already under --min-batch %d; an out-of-memory crash is not retried with a smaller one", r.initial.Batch, o.MinBatch))
	}
	r.cur = r.initial
	return r, notes, nil
}

// findKey is the first job config holding key, and its value there.
func (r *recovery) findKey(key string) (string, int, error) {
	if len(r.o.JobConfigs) == 0 {
		return "", 0, errors.New("no --job-config to find it in; name the job's config file with --job-config FILE")
	}
	for _, file := range r.o.JobConfigs {
		f, err := parseConfig(file)
		if err != nil {
			return "", 0, err
		}
		v, err := readConfigInt(f, key)
		if errors.Is(err, errNoKey) {
			continue
		}
		if err != nil {
			return "", 0, fmt.Errorf("%s: %w", file, err)
		}
		return file, v, nil
	}
	return "", 0, fmt.Errorf("not in %s; name nested keys as outer.inner", strings.Join(r.o.JobConfigs, ", "))
}

// apply is argv with the current tuning: changed flag values replaced, and the
// rewritten config copies in place of the user's files.
func (r *recovery) apply(argv []string) []string {
	if r == nil {
		return argv
	}
	for _, k := range []struct {
		knob      Knob
		from, now int
	}{{r.names.Batch, r.initial.Batch, r.cur.Batch}, {r.names.GradAccum, r.initial.GradAccum, r.cur.GradAccum}, {r.names.Workers, r.initial.Workers, r.cur.Workers}} {
		if k.knob.Kind == rundir.AdjustArg && k.now != k.from {
			argv = ReplaceArg(argv, k.knob.Name, strconv.Itoa(k.now))
		}
	}
	for file, cp := range r.copies {
		argv = replacePath(argv, file, cp, r.workDir)
	}
	return argv
}

// envVars are the variables recovery sets for the next attempt; nil when none.
func (r *recovery) envVars() map[string]string {
	if r == nil || len(r.cur.Env) == 0 {
		return nil
	}
	return maps.Clone(r.cur.Env)
}

// next decides the changes for attempt, after the previous one failed with v, and
// makes them: config copies are written, the tuning moves on. giveUp is set when no
// restart can help.
func (r *recovery) next(v classify.Verdict, attempt int) (changes []rundir.Adjustment, giveUp string, err error) {
	a := Adjust(v.Class, evidenceTexts(v), r.cur, r.names, r.o.MinBatch, r.userSet)
	if a.GiveUp != "" {
		return nil, a.GiveUp, nil
	}
	// The copies hold every key that differs from the user's file, not only those
	// this step changed.
	values := map[string]map[string]int{}
	for i, k := range []struct {
		key       string
		from, now int
	}{{r.o.BatchKey, r.initial.Batch, a.Next.Batch}, {r.o.GradAccumKey, r.initial.GradAccum, a.Next.GradAccum}, {r.o.WorkersKey, r.initial.Workers, a.Next.Workers}} {
		if r.keyFile[i] == "" || k.now == k.from {
			continue
		}
		if values[r.keyFile[i]] == nil {
			values[r.keyFile[i]] = map[string]int{}
		}
		values[r.keyFile[i]][k.key] = k.now
	}
	copies := map[string]string{}
	for file, vals := range values {
		if !configChanged(a.Changes, vals) {
			copies[file] = r.copies[file]
			continue
		}
		dir := filepath.Join(r.stateDir, "job-config")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, "", fmt.Errorf("smart recovery: %w", err)
		}
		cp := filepath.Join(dir, fmt.Sprintf("attempt-%d-%s", attempt, filepath.Base(file)))
		if abs, err := filepath.Abs(cp); err == nil {
			cp = abs
		}
		if err := writeConfigCopy(file, cp, vals); err != nil {
			return nil, "", fmt.Errorf("smart recovery: %w", err)
		}
		copies[file] = cp
	}
	for i := range a.Changes {
		a.Changes[i].Attempt = attempt
		if a.Changes[i].Kind == rundir.AdjustConfig {
			for j, key := range []string{r.o.BatchKey, r.o.GradAccumKey, r.o.WorkersKey} {
				if key == a.Changes[i].Name && r.keyFile[j] != "" {
					a.Changes[i].File = r.keyFile[j]
				}
			}
		}
	}
	r.cur, r.copies = a.Next, copies
	return a.Changes, "", nil
}

// configChanged reports whether one of changes is a config key in vals.
func configChanged(changes []rundir.Adjustment, vals map[string]int) bool {
	for _, c := range changes {
		if _, ok := vals[c.Name]; ok && c.Kind == rundir.AdjustConfig {
			return true
		}
	}
	return false
}

// argInt is the integer value of flag in argv (`flag N` or `flag=N`; the last one
// wins, as with argparse); ok is false when argv does not give it.
func argInt(argv []string, flag string) (v int, ok bool, err error) {
	val := ""
	for i := 0; i < len(argv); i++ {
		switch a := argv[i]; {
		case a == flag && i+1 < len(argv):
			val, ok = argv[i+1], true
			i++
		case strings.HasPrefix(a, flag+"="):
			val, ok = a[len(flag)+1:], true
		}
	}
	if !ok {
		return 0, false, nil
	}
	v, err = strconv.Atoi(val)
	if err != nil || v < 0 {
		return 0, false, fmt.Errorf("the command gives it %q, not a whole number", val)
	}
	return v, true, nil
}

// namesFile reports whether argv names file, alone or as the value of a flag=FILE.
func namesFile(argv []string, file, workDir string) bool {
	for _, a := range argv {
		if samePath(a, file, workDir) {
			return true
		}
		if _, v, ok := strings.Cut(a, "="); ok && samePath(v, file, workDir) {
			return true
		}
	}
	return false
}

// replacePath is argv with every mention of file (alone, or after a flag=) replaced
// by cp.
func replacePath(argv []string, file, cp, workDir string) []string {
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = a
		if samePath(a, file, workDir) {
			out[i] = cp
		} else if k, v, ok := strings.Cut(a, "="); ok && samePath(v, file, workDir) {
			out[i] = k + "=" + cp
		}
	}
	return out
}

// samePath reports whether arg, as the job in workDir resolves it, is file.
func samePath(arg, file, workDir string) bool {
	if arg == "" || file == "" {
		return false
	}
	if arg == file {
		return true
	}
	if !filepath.IsAbs(arg) {
		base := workDir
		if base == "" {
			var err error
			if base, err = os.Getwd(); err != nil {
				return false
			}
		}
		arg = filepath.Join(base, arg)
	}
	af, err := filepath.Abs(file)
	if err != nil {
		return false
	}
	return filepath.Clean(arg) == af
}

// adjust runs smart recovery on a decision to restart: it makes the changes for the
// next attempt and records them in rec and the state, or turns the decision into
// giving up when recovery has run out (the class's exit code then ends trainwrap).
// A recovery that fails (a config copy cannot be written) restarts unchanged.
func (s *supervisor) adjust(rec *rundir.Record, v classify.Verdict, d Decision) Decision {
	if s.rec == nil || !d.Restart {
		return d
	}
	changes, giveUp, err := s.rec.next(v, s.state.Attempt+1)
	switch {
	case err != nil:
		s.logf("%v; restarting without changes", err)
	case giveUp != "":
		return Decision{Reason: giveUp}
	}
	rec.Adjustments = changes
	s.state.Adjustments = append(s.state.Adjustments, changes...)
	if len(changes) > 0 {
		s.logf("%s (after %s)", recoveryMessage(changes), v.Class)
	}
	return d
}

// recoveryMessage is the line a restart notification carries about smart recovery's
// changes; "" when none.
func recoveryMessage(changes []rundir.Adjustment) string {
	if len(changes) == 0 {
		return ""
	}
	return fmt.Sprintf("smart recovery: attempt %d runs with %s", changes[0].Attempt, adjustmentText(changes))
}

// adjustmentText is changes as one line: "--batch 8 → 4, --accum 1 → 2".
func adjustmentText(changes []rundir.Adjustment) string {
	parts := make([]string, len(changes))
	for i, c := range changes {
		parts[i] = c.String()
	}
	return strings.Join(parts, ", ")
}
