package main

import "errors"

// ChaosCmd is a placeholder until its owner lands the real command.
type ChaosCmd struct{}

// Run reports that the command is not built yet.
func (c *ChaosCmd) Run(g *Globals) error { return errors.New("chaos: not built yet") }
