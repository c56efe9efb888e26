package main

import "errors"

// CheckpointsCmd is a placeholder until its owner lands the real command.
type CheckpointsCmd struct{}

// Run reports that the command is not built yet.
func (c *CheckpointsCmd) Run(g *Globals) error { return errors.New("checkpoints: not built yet") }
