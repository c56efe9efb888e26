package main

import "errors"

// PreflightCmd is a placeholder until its owner lands the real command.
type PreflightCmd struct{}

// Run reports that the command is not built yet.
func (c *PreflightCmd) Run(g *Globals) error { return errors.New("preflight: not built yet") }
