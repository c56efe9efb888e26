package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/alecthomas/kong"
)

// configFile is trainwrap's own JSON config: flag names as keys, with - or _
// ("stall-timeout" or "stall_timeout"), values as on the command line.
type configFile struct {
	path   string
	values map[string]any
}

// loadConfig finds and reads the config: the value of --config (or TRAINWRAP_CONFIG)
// when given, which must exist, otherwise trainwrap.json in the working directory when
// it exists. It returns nil when there is none.
func loadConfig(args []string) (*configFile, error) {
	path, explicit := "", false
	for i, a := range args {
		if a == "--" {
			break
		}
		if a == "--config" && i+1 < len(args) {
			path, explicit = args[i+1], true
		} else if v, ok := strings.CutPrefix(a, "--config="); ok {
			path, explicit = v, true
		}
	}
	if !explicit {
		if v := os.Getenv("TRAINWRAP_CONFIG"); v != "" {
			path, explicit = v, true
		} else {
			path = "trainwrap.json"
		}
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !explicit {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("config %s: %v; it must be one JSON object of flag names and values, e.g. {\"stall_timeout\": \"10m\"}", path, err)
	}
	c := &configFile{path: path, values: map[string]any{}}
	for k, v := range raw {
		c.values[strings.ReplaceAll(k, "_", "-")] = v
	}
	return c, nil
}

// Validate rejects keys that name no flag of trainwrap, so a typo is not silently
// ignored.
func (c *configFile) Validate(app *kong.Application) error {
	known := map[string]bool{}
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		for _, f := range n.Flags {
			known[f.Name] = true
		}
		for _, ch := range n.Children {
			walk(ch)
		}
	}
	walk(app.Node)
	for k := range c.values {
		if !known[k] {
			return fmt.Errorf("config %s: %q is not a trainwrap flag (see trainwrap --help)", c.path, k)
		}
	}
	return nil
}

// Resolve gives kong the file's value for a flag, unless the flag's TRAINWRAP_* env
// var is set: flags win over env, env over the file. (kong consults resolvers after
// env vars, so the file would otherwise win over env.)
func (c *configFile) Resolve(_ *kong.Context, _ *kong.Path, flag *kong.Flag) (any, error) {
	for _, e := range flag.Envs {
		if _, ok := os.LookupEnv(e); ok {
			return nil, nil
		}
	}
	v, ok := c.values[flag.Name]
	if !ok {
		return nil, nil
	}
	// JSON numbers arrive as float64; kong's integer mappers want a string then.
	if f, isNum := v.(float64); isNum {
		return strings.TrimSuffix(fmt.Sprintf("%f", f), ".000000"), nil
	}
	return v, nil
}
