package main

import "errors"

// StatusCmd prints the state of the run dir's supervisor.
type StatusCmd struct {
	JSON bool `help:"Print state.json as JSON." name:"json"`
}

// Run is being written.
func (c *StatusCmd) Run(g *Globals) error { return errors.New("status: not built yet") }

// HistoryCmd prints one row per attempt.
type HistoryCmd struct {
	JSON bool `help:"Print the records as JSON lines." name:"json"`
}

// Run is being written.
func (c *HistoryCmd) Run(g *Globals) error { return errors.New("history: not built yet") }

// GuardCmd is the internal guard process.
type GuardCmd struct{}

// Run is being written.
func (c *GuardCmd) Run(g *Globals) error { return errors.New("guard: not built yet") }

// RunCmd supervises a command.
type RunCmd struct {
	Config  string   `help:"trainwrap's own JSON config file (default trainwrap.json if present)." type:"path"`
	Command []string `arg:"" passthrough:"" help:"The training command."`
}

// Run is being written.
func (c *RunCmd) Run(g *Globals) error { return errors.New("run: not built yet") }
