package main

import "errors"

// ReportCmd is a placeholder until its owner lands the real command.
type ReportCmd struct{}

// Run reports that the command is not built yet.
func (c *ReportCmd) Run(g *Globals) error { return errors.New("report: not built yet") }
