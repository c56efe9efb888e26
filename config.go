package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/alecthomas/kong"
)

// defaultConfig is the config file run and preflight read when --config is not given
// and the file exists.
const defaultConfig = "trainwrap.json"

// Only run and preflight take settings from TRAINWRAP_* env vars and the config file:
// the other commands act on what is there (a run dir, logs, checkpoints) and a
// leftover variable or file must not change what they do. A flag tagged cmdline:""
// is accepted only on the command line: the confirmations of destructive actions
// (--yes, --delete-incomplete, --force, --fix), so that no file or variable left
// behind turns a dry run into a deletion, and per-invocation choices (--json, --only).
// settingCommand reports whether n is run or preflight.
func settingCommand(n *kong.Node) bool {
	return n.Type == kong.CommandNode && (n.Name == "run" || n.Name == "preflight")
}

// commandLineOnly reports whether only the command line may set f.
func commandLineOnly(f *kong.Flag) bool {
	return f.Name == "help" || f.Tag.Has("cmdline")
}

// settingEnvars gives each setting of run and preflight its TRAINWRAP_<FLAG> env var
// (--stall-timeout: TRAINWRAP_STALL_TIMEOUT), and --config and --state-dir theirs;
// no other flag reads the environment.
func settingEnvars() kong.Option {
	return kong.PostBuild(func(k *kong.Kong) error {
		addEnv := func(f *kong.Flag) {
			name := envName(f.Name)
			f.Envs = []string{name}
			f.Value.Tag.Envs = []string{name}
		}
		for _, f := range k.Model.Flags {
			if f.Name == "state-dir" {
				// Every command reads it: the job's environment and systemd units
				// carry TRAINWRAP_STATE_DIR, and status must find the run that run
				// writes.
				addEnv(f)
			}
		}
		for _, n := range k.Model.Children {
			if !settingCommand(n) {
				continue
			}
			for _, f := range n.Flags {
				if !commandLineOnly(f) {
					addEnv(f)
				}
			}
		}
		return nil
	})
}

// envName is the variable a flag reads: --stall-timeout, TRAINWRAP_STALL_TIMEOUT.
func envName(flag string) string {
	return "TRAINWRAP_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// configFile is trainwrap's own JSON config for run and preflight: flag names as keys,
// with - or _ ("stall-timeout" or "stall_timeout"), values as on the command line.
type configFile struct {
	path   string
	values map[string]any    // by flag name
	keys   map[string]string // flag name: the key as the file spells it
}

// configError is a mistake in the config file; it names the file and the key, and is
// printed without the flag context kong would put in front of it.
type configError struct{ msg string }

func (e configError) Error() string { return e.msg }

// loadConfigHook is run's and preflight's BeforeResolve hook: it reads the config
// (--config or TRAINWRAP_CONFIG, which must exist, otherwise trainwrap.json when it
// exists), checks every key and value, and hands the file to kong as a resolver.
// Commands without the hook never open the file, so a broken one cannot break them.
func loadConfigHook(ctx *kong.Context) error {
	path, explicit := "", false
	for _, f := range ctx.Flags() {
		switch f.Name {
		case "config":
			path, _ = ctx.FlagValue(f).(string)
		case "in-process":
			// preflight's GPU child: its parent read the file and passes what the
			// check needs as flags, and may have read another file than the one
			// in the working directory.
			if in, _ := ctx.FlagValue(f).(bool); in {
				return nil
			}
		}
	}
	if path != "" {
		explicit = true
	} else {
		path = defaultConfig
	}
	c, err := readConfig(path, explicit, ctx.Model)
	if err != nil || c == nil {
		return err
	}
	ctx.AddResolver(c)
	return nil
}

// readConfig reads and checks the file; nil when it is the default and absent.
func readConfig(path string, explicit bool, app *kong.Application) (*configFile, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return nil, nil
	}
	if err != nil {
		return nil, configError{fmt.Sprintf("config %s: %v", path, err)}
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, configError{fmt.Sprintf("config %s: %v; it must be one JSON object of flag names and values, e.g. {\"stall_timeout\": \"10m\"}", path, err)}
	}
	if raw == nil {
		return nil, configError{fmt.Sprintf("config %s: null; it must be one JSON object of flag names and values, e.g. {\"stall_timeout\": \"10m\"}", path)}
	}
	c := &configFile{path: path, values: map[string]any{}, keys: map[string]string{}}
	settings := settingFlags(app)
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys) // the first error is the same on every run
	for _, k := range keys {
		name := strings.ReplaceAll(k, "_", "-")
		if other, dup := c.keys[name]; dup {
			return nil, c.keyError(k, fmt.Sprintf("names the same flag as key %q; keep one of them", other))
		}
		f := settings[name]
		if f == nil {
			return nil, c.keyError(k, notASetting(app, name))
		}
		v, err := flagValue(f, raw[k])
		if err != nil {
			return nil, c.keyError(k, err.Error()+"; fix or remove it")
		}
		c.values[name], c.keys[name] = v, k
	}
	return c, nil
}

func (c *configFile) keyError(key, msg string) error {
	return configError{fmt.Sprintf("config %s: key %q: %s", c.path, key, msg)}
}

// settingFlags are the flags the config file may set, by name: those of run and
// preflight that the command line alone does not own.
func settingFlags(app *kong.Application) map[string]*kong.Flag {
	out := map[string]*kong.Flag{}
	for _, n := range app.Children {
		if !settingCommand(n) {
			continue
		}
		for _, f := range n.Flags {
			if !commandLineOnly(f) && f.Name != "config" {
				out[f.Name] = f
			}
		}
	}
	return out
}

// notASetting says why the flag name is no config key.
func notASetting(app *kong.Application, name string) string {
	switch name {
	case "config":
		return "a config file cannot name another; remove it"
	case "state-dir":
		// status, history and checkpoints do not read the file: a run dir set here
		// would be one they cannot find.
		return "the run directory cannot be set here (status, history and checkpoints do not read this file, so they would not find the run); remove it and use --state-dir or TRAINWRAP_STATE_DIR"
	}
	found, cmdline := "", false
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		for _, f := range n.Flags {
			if strings.ReplaceAll(f.Name, "_", "-") == name {
				found = f.Name
				cmdline = cmdline || commandLineOnly(f)
			}
		}
		for _, ch := range n.Children {
			walk(ch)
		}
	}
	walk(app.Node)
	switch {
	case cmdline:
		return fmt.Sprintf("--%s is accepted only on the command line; remove it", found)
	case found != "":
		return fmt.Sprintf("--%s is no option of run or preflight, the only commands that read this file; remove it", found)
	}
	return "no flag of run or preflight has this name (see trainwrap run --help, trainwrap preflight --help); fix or remove it"
}

// flagValue turns a JSON value into what kong's mapper for f takes, and decodes it
// once so that a bad value is reported against its key here, not as if it had been
// typed on the command line.
func flagValue(f *kong.Flag, v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, errors.New("null is no value")
	case map[string]any:
		return nil, errors.New("an object is no value; give one as on the command line")
	case float64:
		// JSON numbers arrive as float64; kong's integer mappers want a string, and
		// a bare number for a duration must fail (no unit), not mean nanoseconds.
		if x == float64(int64(x)) {
			v = strconv.FormatInt(int64(x), 10)
		} else {
			v = strconv.FormatFloat(x, 'g', -1, 64)
		}
	case []any:
		if f.Target.Kind() != reflect.Slice {
			return nil, fmt.Errorf("a list, but --%s takes one value", f.Name)
		}
	}
	scratch := reflect.New(f.Target.Type()).Elem()
	if f.Target.Kind() == reflect.Slice {
		scratch.Set(reflect.MakeSlice(f.Target.Type(), 0, 0))
	}
	tok := kong.Token{Type: kong.FlagValueToken, Value: v}
	if err := f.Mapper.Decode(&kong.DecodeContext{Value: f.Value, Scan: kong.ScanFromTokens(tok)}, scratch); err != nil {
		return nil, err
	}
	if f.Enum != "" {
		allowed := strings.Split(f.Enum, ",")
		if s, ok := scratch.Interface().(string); ok && !slices.Contains(allowed, s) {
			return nil, fmt.Errorf("%q is not one of %s", s, strings.Join(allowed, ", "))
		}
	}
	return v, nil
}

// Validate is part of kong.Resolver; readConfig checked every key already.
func (c *configFile) Validate(*kong.Application) error { return nil }

// Resolve gives kong the file's value for a flag, unless the flag's TRAINWRAP_* env
// var is set: flags win over env, env over the file. (kong consults resolvers after
// env vars, so the file would otherwise win over env.)
func (c *configFile) Resolve(_ *kong.Context, _ *kong.Path, flag *kong.Flag) (any, error) {
	if commandLineOnly(flag) {
		return nil, nil
	}
	for _, e := range flag.Envs {
		if _, ok := os.LookupEnv(e); ok {
			return nil, nil
		}
	}
	v, ok := c.values[flag.Name]
	if !ok {
		return nil, nil
	}
	return v, nil
}

// warnIgnoredEnv says so when a TRAINWRAP_* variable names a flag of this command that
// only the command line may set: TRAINWRAP_YES=1 leaves prune a dry run, and the
// person who set it should hear why.
func warnIgnoredEnv(ctx *kong.Context, w io.Writer) {
	for _, f := range ctx.Flags() {
		if !commandLineOnly(f) || f.Name == "help" {
			continue
		}
		name := envName(f.Name)
		if _, ok := os.LookupEnv(name); ok {
			fmt.Fprintf(w, "trainwrap: ignoring %s: --%s is accepted only on the command line\n", name, f.Name)
		}
	}
}
